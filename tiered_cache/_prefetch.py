"""``tiered.prefetch()``: load during Lambda's INIT what the first invocation would load in turn.

::

    import functools
    import tiered_cache as tiered
    from tiered_cache import secrets_manager, ssm

    @ssm.cache(parameter="/prod/app/url")
    @secrets_manager.cache(name="prod/db", entry_name="db")
    def handler(event, context): ...

    tiered.prefetch(                                   # at module level, after the decorators
        functools.partial(ssm.get_entry, "/prod/app/flags", max_age_in_seconds=300),
    )

What is loaded:

- what every handler decorator (``ssm.cache``, ``secrets_manager.cache``, ``s3.cache``,
  ``dynamodb.cache``, ``appconfig.cache``) declared: each records its arguments when it
  decorates (they are validated here, not at import; a bad one is logged like a failure);
- each extra spec: a ``functools.partial`` of a helper's getter (``ssm.get_entry``,
  ``secrets_manager.get_entry``, ``s3.get_entry``, ``dynamodb.get_entry``,
  ``appconfig.get_entry``, ``ssm.get_parameters_by_path``) with the call's arguments, which is
  loaded exactly as that call would load it (and batched with the declared values); or any
  other callable taking no argument (such as ``functools.partial(build_report, day)`` for a
  ``@tiered.cache`` function), which is called.

How:

- concurrently, in one thread pool of at most ``max_workers`` threads, joined before this
  returns (no thread outlives the call: a frozen environment runs none);
- SSM names of one client and decryption setting are grouped into ``GetParameters`` calls of
  at most 10 names (IAM: ``ssm:GetParameters``; if it is denied, each name is loaded alone with
  ``GetParameter``); everything else is one call each, through the cache as usual (single-flight,
  every tier). Secrets are not batched: ``BatchGetSecretValue`` needs an IAM action that takes
  no resource ARN, which least-privilege policies rarely grant, and in parallel two calls take
  the time of one;
- a value already fresh in memory, on disk or in the shared tier for its own max age costs no
  origin call;
- a failure (a missing name, a denied call, a bad argument, a callable that raises) is logged
  once, as one warning naming what failed, and never raised: the first invocation then loads it
  as usual (a missing name is remembered as the helpers remember any, for up to 10 s);
- under SnapStart (``AWS_LAMBDA_INITIALIZATION_TYPE=snap-start``), secrets are not loaded
  before the snapshot: Secrets Manager values are skipped, and SSM names are fetched without
  decryption, leaving SecureStrings out (a list of names or a path with decryption is skipped
  too). The after-restore hook expires every value loaded before the snapshot anyway (the first
  invocation after a restore revalidates; an S3 object unchanged since costs 0 body bytes).

Returns a :class:`Prefetched` summary. Thread-safe (call it from one thread at INIT; calling it
again later is harmless: what is fresh costs nothing). ``TypeError`` only for a spec that is not
callable or a bad ``max_workers``, before anything is loaded.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, cast

from ._entry import MISSING
from ._log import log

if TYPE_CHECKING:
    from ._aws._plan import Plan

__all__ = ["Prefetched", "prefetch"]

#: The thread pool's default bound: enough for a few batches and secrets in parallel, small
#: enough for the smallest Lambda (and the SSM account quota of 40 requests per second).
MAX_WORKERS: Final = 8


class Prefetched:
    """What one :func:`prefetch` call did: ``loaded`` values fetched from their origin (or
    called, for a plain callable), ``fresh`` values already fresh (no origin call), ``failed``
    (each logged once), ``skipped`` (secrets before a SnapStart snapshot), ``calls`` origin
    calls made for the loaded values (a batch of names is one), and ``seconds`` of wall time."""

    __slots__ = ("_lock", "calls", "failed", "fresh", "loaded", "seconds", "skipped")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.loaded = 0
        self.fresh = 0
        self.failed = 0
        self.skipped = 0
        self.calls = 0
        self.seconds = 0.0

    def _add(self, field: str, n: int = 1) -> None:
        with self._lock:  # the pool's threads count here
            setattr(self, field, getattr(self, field) + n)

    def __repr__(self) -> str:
        return (
            f"Prefetched(loaded={self.loaded}, fresh={self.fresh}, failed={self.failed}, "
            f"skipped={self.skipped}, calls={self.calls}, seconds={self.seconds:.3f})"
        )


def prefetch(*specs: Callable[[], Any], max_workers: int = MAX_WORKERS) -> Prefetched:
    """Load what every handler decorator declared, and ``specs``, concurrently; never raises
    for a failed load (see the module docstring for the whole contract)."""
    started = time.perf_counter()
    for spec in specs:
        if not callable(spec):
            raise TypeError(
                "tiered-cache: prefetch() takes callables: functools.partial(ssm.get_entry, "
                f"'/name', ...) or any function of no argument, not {type(spec).__name__}"
            )
    if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
        raise TypeError(
            f"tiered-cache: prefetch(): max_workers must be an int >= 1, not {max_workers!r}"
        )
    done = Prefetched()
    snapshot = os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "snap-start"
    tasks: list[Callable[[], None]] = []
    plans, others = _plans(specs, done)
    if plans:
        tasks += _aws_tasks(plans, snapshot, done)
    tasks += [functools.partial(_call, other, done) for other in others]
    if len(tasks) == 1:
        tasks[0]()
    elif tasks:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(max_workers, len(tasks)), "tiered-prefetch") as pool:
            for future in [pool.submit(task) for task in tasks]:
                future.result()  # the tasks catch their own errors
    done.seconds = time.perf_counter() - started
    return done


# -- what to load -------------------------------------------------------------------------------


def _plans(
    specs: tuple[Callable[[], Any], ...], done: Prefetched
) -> tuple[list[tuple[str, Plan]], list[Callable[[], Any]]]:
    """The helpers' plans (declared, then extra; one per cache key) and the other callables."""
    others: list[Callable[[], Any]] = []
    makers: list[tuple[str, Callable[[], Any]]] = []
    aws = sys.modules.get("tiered_cache._aws")  # loaded by any helper: else none declared
    if aws is not None:
        from ._aws import _handler

        makers += [(d.owner, d.make_spec) for d in list(_handler.declared.values())]
    for spec in specs:
        getter = _getter_of(spec) if aws is not None else None
        if getter is None:
            others.append(spec)
        else:
            partial = cast("functools.partial[Any]", spec)
            owner = f"{partial.func.__module__.rsplit('.', 1)[-1]}.{partial.func.__name__}"
            makers.append((owner, functools.partial(getter, partial.args, partial.keywords)))
    if not makers:
        return [], others
    from ._aws._plan import plan_for

    plans: dict[str, tuple[str, Plan]] = {}
    for owner, make in makers:
        try:
            plan = plan_for(make())
        except Exception as exc:  # a bad argument: the first call will raise it
            _failed(owner, exc, done)
            continue
        plans.setdefault(plan.key, (owner, plan))
    return list(plans.values()), others


def _getter_of(spec: Any) -> Callable[..., Any] | None:
    if not isinstance(spec, functools.partial):
        return None
    from ._aws._service import getters

    return getters.get(spec.func)


def _aws_tasks(
    plans: list[tuple[str, Plan]], snapshot: bool, done: Prefetched
) -> list[Callable[[], None]]:
    """One task per plan, except SSM names that share a batch: one task per batch."""
    from ._aws._plan import remembered_miss

    tasks: list[Callable[[], None]] = []
    groups: dict[Any, list[tuple[str, Plan]]] = {}
    for owner, plan in plans:
        request = plan.spec.request
        service = request.service
        if snapshot and not service.at_snapshot(request):
            done._add("skipped")
            continue
        group = service.batch_key(request) if service.batch else None
        if group is None or remembered_miss(plan):  # the latter raises with no origin call
            tasks.append(functools.partial(_load, owner, plan, done))
        elif _fresh(plan):
            done._add("fresh")
        else:
            groups.setdefault((id(service), group), []).append((owner, plan))
    for members in groups.values():
        size = members[0][1].spec.request.service.batch
        for start in range(0, len(members), size):
            batch = members[start : start + size]
            tasks.append(functools.partial(_load_batch, batch, snapshot, done))
    return tasks


def _fresh(plan: Plan) -> bool:
    """Is a value fresh for ``plan`` in any tier (memory, disk, shared)? No origin call."""
    return plan.cache.get(plan.key, MISSING, ttl=plan.age) is not MISSING


# -- the tasks (each catches its own errors) --------------------------------------------------


def _load(owner: str, plan: Plan, done: Prefetched) -> None:
    from ._aws._plan import load

    fetch = plan.spec.fetch_file if plan.file else plan.spec.fetch
    called: list[bool] = []

    def counted(*args: Any) -> Any:
        called.append(True)
        return fetch(*args)  # type: ignore[misc]

    try:
        load(plan, fetch=counted)
    except Exception as exc:
        _failed(f"{owner} {_name(plan)}", exc, done)
        return
    if called:
        done._add("loaded")
        done._add("calls")
    else:
        done._add("fresh")


def _load_batch(members: list[tuple[str, Plan]], snapshot: bool, done: Prefetched) -> None:
    from ._aws._plan import load
    from ._aws._service import SKIP
    from .exceptions import SourceError

    requests = [plan.spec.request for _, plan in members]
    service = requests[0].service
    try:
        answers = service.fetch_batch(requests, snapshot)
    except SourceError as exc:
        if _code(exc).startswith("AccessDenied") and not snapshot:  # no ssm:GetParameters
            for owner, plan in members:
                _load(owner, plan, done)
            return
        for owner, plan in members:
            _failed(f"{owner} {_name(plan)}", exc, done)
        return
    done._add("calls")
    for (owner, plan), answer in zip(members, answers, strict=True):
        if answer is SKIP:
            done._add("skipped")
            continue
        try:
            load(plan, fetch=functools.partial(_answer, answer))
        except Exception as exc:
            _failed(f"{owner} {_name(plan)}", exc, done)
        else:
            done._add("loaded")


def _answer(answer: Any) -> Any:
    if isinstance(answer, BaseException):
        raise answer
    return answer


def _call(spec: Callable[[], Any], done: Prefetched) -> None:
    try:
        spec()
    except Exception as exc:
        _failed(getattr(spec, "__qualname__", None) or repr(spec), exc, done)
    else:
        done._add("loaded")


def _failed(what: str, exc: BaseException, done: Prefetched) -> None:
    done._add("failed")
    log.warning(
        "tiered-cache: prefetch: %s failed (%s: %s); it is loaded on first use instead",
        what,
        type(exc).__name__,
        exc,
    )


def _name(plan: Plan) -> str:
    request = plan.spec.request
    return repr(request.name if request.name is not None else request.names)


def _code(exc: BaseException) -> str:
    from ._aws._clients import error_code

    return error_code(exc.__cause__)
