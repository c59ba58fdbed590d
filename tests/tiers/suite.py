"""The conformance suite: one class of tests that every tier runs (see ``tiered_cache._tier``).

Modelled on dogpile.cache's ``_GenericBackendTestSuite`` and cachetools' ``CacheTestMixin``. A
tier's test file subclasses :class:`TierSuite`, names the tier's class, declares what the tier
can do (class attributes) and gives one fixture, ``tier_kwargs``, the keyword arguments that
build a tier on a private store. Every case builds its tiers from those, so a case that needs a
second instance on the same store (a sibling, or one in another process) makes it the same way;
in another process the arguments are passed by ``repr`` (keep them literals).

Capabilities (each must be declared; :meth:`TierSuite.__init_subclass__` checks):

- ``keeps_bytes``: stores the ``payload`` bytes (disk, Redis) rather than the entry's object.
- ``guards``: ``put(..., guard)`` applies the guard atomically with its write. A tier that does
  not may still be correct (the shared tier documents why): the suite then pins that ``put``
  ignores the guard, writes, and returns None.
- ``keeps_tombstones``: ``delete(key, tombstone)`` leaves the tombstone for ``get`` to find.
- ``process_lock``: ``lock`` excludes other processes (and other instances); otherwise it only
  excludes this instance's other threads.
- ``honours_lifetime``: an entry is gone once ``put``'s ``lifetime`` has passed; otherwise the
  lifetime is ignored (even 0 stores).
- ``shared_between_processes``: another instance on the same store, in this process or in
  another one, reads what this one writes.
- ``remote``: the value the tier's ``remote`` attribute must have.

Optional hooks: ``stored_names(kwargs)`` (byte-keeping tiers: every name the store holds, to
prove keys are hashed), the fixtures ``neighbour_kwargs`` (a tier in another namespace of the
same store, that ``clear`` must spare) and ``broken_kwargs`` (a tier whose store faults, cheaply;
``fault_counter`` names the ``stats()`` counter a fault raises). ``xfail`` maps a case name to
the reason a tier is known to break it (applied as a strict xfail by ``conftest.py``).
A case needing a capability the tier declares it lacks is deselected (``needs``); a case
needing an optional hook the file does not give is skipped, naming the hook.

A new tier's file, in full (a DynamoDB tier on moto's server, which other processes share)::

    class TestDynamoTier(TierSuite):
        tier_class = DynamoTier
        keeps_bytes = True
        guards = True  # a conditional PutItem
        keeps_tombstones = True
        process_lock = True
        honours_lifetime = False
        shared_between_processes = True
        remote = True

        @pytest.fixture
        def tier_kwargs(self, moto_server: str) -> dict[str, Any]:
            return {"table": make_table(moto_server), "endpoint_url": moto_server}

        def stored_names(self, kwargs: dict[str, Any]) -> set[str]:
            return {item["pk"] for item in scan(kwargs)}
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import queue
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, ClassVar, Final

import pytest

import tiered_cache
from tiered_cache import _serial
from tiered_cache._entry import Entry, Guard, tombstone
from tiered_cache._tier import Tier

__all__ = ["CAPABILITIES", "TierSuite", "needs", "same"]

#: The capabilities every tier's test file declares, as bool class attributes.
CAPABILITIES: Final = (
    "keeps_bytes",
    "guards",
    "keeps_tombstones",
    "process_lock",
    "honours_lifetime",
    "shared_between_processes",
    "remote",
)

T0: Final = 1_000_000.0
LIFETIME: Final = 60.0
#: A value of every JSON-ish type, with the traps of each: bool is not int, -0.0 keeps its sign.
VALUE: Final = {
    "text": "héllo wörld ✓ 鍵",
    "int": 2**70,
    "negative": -7,
    "float": 0.1,
    "negative_zero": -0.0,
    "bytes": b"\x00\xffraw",
    "list": [1, "two", 3.0, None, True, [b""]],
    "dict": {"nested": {"ok": False}, "": 0},
    "none": None,
    "true": True,
    "false": False,
}
#: Keys that a tier which named things by the key would mangle, truncate or confuse.
ODD_KEYS: Final = {
    "unicode": "ünïcødé/ключ/鍵/🔑",
    "slashes": "a/b/../../etc/passwd",
    "glob": "*[]?{}\\*",
    "long": "k" * 10_240,
    "empty": "",
    "spaces_and_controls": " lead\ttab\nnew\x00nul trail ",
    "lone_surrogate": "half\ud800pair",
    "looks_hashed": "v1:" + "0" * 64,
}
REPO_ROOT: Final = Path(tiered_cache.__file__).resolve().parent.parent
CHILD_TIMEOUT: Final = 30.0


def needs(*capabilities: str) -> pytest.MarkDecorator:
    """Run a case only for tiers declaring ``capabilities`` ("!name": declaring it False)."""
    for capability in capabilities:
        if capability.lstrip("!") not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r}")
    return pytest.mark.tier_needs(*capabilities)


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (True is not 1, -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if type(a) is list or type(a) is tuple:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is float:
        return struct.pack("!d", a) == struct.pack("!d", b)
    return bool(a == b)


def _in_thread(fn: Callable[[], Any], timeout: float = CHILD_TIMEOUT) -> Any:
    """``fn()`` run in another thread; its result, or its exception raised here."""
    out: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"the other thread did not finish within {timeout} s"
    if errors:
        raise errors[0]
    return out[0]


def _try_lock(tier: Tier, key: str, wait: float) -> tuple[bool, float]:
    """(whether ``tier.lock(key, wait)`` was held, seconds it took to say so)."""
    start = time.monotonic()
    with tier.lock(key, wait) as held:
        return held, time.monotonic() - start


# -- another process -------------------------------------------------------------------------

_BOOT: Final = """\
import ast, importlib, json, sys
module, _, name = sys.argv[1].partition(":")
factory = importlib.import_module(module)
for part in name.split("."):
    factory = getattr(factory, part)
tier = factory(**ast.literal_eval(sys.argv[2]))
"""


class _Child:
    """A fresh interpreter that builds the tier as the test did and runs ``script`` on it.

    ``script`` sees ``tier`` and ``sys.argv[3:]`` (the extra ``args``); the test reads its
    output line by line (bounded waits) and writes lines to its stdin. Killed on exit.
    """

    def __init__(self, factory: Any, kwargs: dict[str, Any], script: str, *args: str) -> None:
        if ast.literal_eval(repr(kwargs)) != kwargs:
            pytest.fail("tier_kwargs must be literals: another process builds the tier from them")
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed in __exit__)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _BOOT + textwrap.dedent(script),
                f"{factory.__module__}:{factory.__qualname__}",
                repr(kwargs),
                *args,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _fail(self, why: str) -> None:
        self.proc.kill()
        self.proc.wait()
        self.stderr.seek(0)
        pytest.fail(f"{why}\n--- child stderr\n{self.stderr.read().decode(errors='replace')}")

    def line(self, timeout: float = CHILD_TIMEOUT) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self._fail(f"the child printed nothing within {timeout} s")
            raise AssertionError("unreachable") from None
        if line is None:
            self.proc.wait()
            self._fail(f"the child exited ({self.proc.returncode}) before printing a line")
        assert line is not None
        return line

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def __enter__(self) -> _Child:
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


_CHILD_READ_WRITE: Final = """
from tiered_cache import _serial
from tiered_cache._entry import Entry
got = tier.get(sys.argv[3])
fields = None if got is None else [
    repr(got.value), got.stored_at, got.expires_at, got.stale_until, got.version]
print(json.dumps(fields), flush=True)
value = ast.literal_eval(sys.argv[5])
payload = _serial.dumps(value, "safe")
entry = Entry(value, 2.0e6, 2.0e6 + 60, 2.0e6 + 90, "child", len(payload))
print(repr(tier.put(sys.argv[4], entry, payload, 60.0)), flush=True)
"""

_CHILD_HOLD_LOCK: Final = """
with tier.lock(sys.argv[3], 5.0) as held:
    print("held" if held else "refused", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


# -- the suite ----------------------------------------------------------------------------------


class TierSuite:
    """The cases every tier passes; subclass it in ``tests/tiers/test_<tier>.py``."""

    # What the tier's file declares (see the module docstring).
    tier_class: ClassVar[Callable[..., Tier]]
    keeps_bytes: ClassVar[bool]
    guards: ClassVar[bool]
    keeps_tombstones: ClassVar[bool]
    process_lock: ClassVar[bool]
    honours_lifetime: ClassVar[bool]
    shared_between_processes: ClassVar[bool]
    remote: ClassVar[bool]
    #: The stats() counter a fault raises (with ``broken_kwargs``).
    fault_counter: ClassVar[str | None] = None
    #: A lifetime short enough to wait out, long enough to read the entry before it ends.
    expiry_lifetime: ClassVar[float] = 0.5
    #: Case name -> why this tier is known to fail it (a strict xfail, for the lead to decide).
    xfail: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        missing = [name for name in CAPABILITIES if type(getattr(cls, name, None)) is not bool]
        if not hasattr(cls, "tier_class"):
            missing.insert(0, "tier_class")
        if missing:
            raise TypeError(f"{cls.__name__} must declare {', '.join(missing)} (see suite.py)")
        unknown = [name for name in cls.xfail if not callable(getattr(cls, name, None))]
        if unknown:
            raise TypeError(f"{cls.__name__}.xfail names no case of the suite: {unknown}")

    # -- the hooks a tier's file gives -------------------------------------------------------

    @pytest.fixture
    def tier_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of a tier on a private, healthy store (override this)."""
        raise NotImplementedError("a tier's test file must define the tier_kwargs fixture")

    @pytest.fixture
    def neighbour_kwargs(self, tier_kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """A tier in another namespace of the same store, or None (no namespaces)."""
        return None

    @pytest.fixture
    def broken_kwargs(self) -> dict[str, Any] | None:
        """A tier whose store faults on every use, or None (no cheap fault)."""
        return None

    def stored_names(self, kwargs: dict[str, Any]) -> set[str]:
        """Every name (file, row key, Redis key...) the store of ``kwargs`` holds."""
        raise NotImplementedError("a byte-keeping tier's test file must define stored_names")

    # -- building blocks ----------------------------------------------------------------------

    @pytest.fixture
    def make_tier(self, tier_kwargs: dict[str, Any]) -> Callable[[], Tier]:
        """Factory of tiers on the test's store (each call: a new instance, same store)."""
        factory = type(self).tier_class
        return lambda: factory(**tier_kwargs)

    @pytest.fixture
    def tier(self, make_tier: Callable[[], Tier]) -> Tier:
        return make_tier()

    def entry(
        self, value: Any = VALUE, stored_at: float = T0, version: str | None = None
    ) -> tuple[Entry, bytes | None]:
        """An entry stored at ``stored_at`` and the payload this tier is given with it."""
        payload = _serial.dumps(value, _serial.SAFE) if self.keeps_bytes else None
        size = len(payload) if payload is not None else 64
        return Entry(value, stored_at, stored_at + 60, stored_at + 90, version, size), payload

    def put(
        self, tier: Tier, key: str, value: Any = VALUE, stored_at: float = T0, **kw: Any
    ) -> Entry | None:
        entry, payload = self.entry(value, stored_at)
        return tier.put(key, entry, payload, kw.pop("lifetime", LIFETIME), **kw)

    def contender(self, tier: Tier, make_tier: Callable[[], Tier]) -> Tier:
        """Who competes with ``tier`` for a lock from another thread: the same instance for a
        thread lock, another instance on the same store for a process lock."""
        return make_tier() if self.process_lock else tier

    # -- identity and health ----------------------------------------------------------------

    def test_name_and_remote(self, tier: Tier) -> None:
        assert type(tier.name) is str
        assert tier.name
        assert tier.remote is self.remote

    def test_available_on_a_healthy_tier(self, tier: Tier) -> None:
        assert tier.available is True
        self.put(tier, "k")
        tier.get("k")
        assert tier.available is True

    def test_stats_is_a_dict_of_str_to_int_named_after_the_tier(self, tier: Tier) -> None:
        def check() -> None:
            stats = tier.stats()
            assert type(stats) is dict
            assert stats, "stats() is empty"
            for name, count in stats.items():
                assert type(name) is str
                assert type(count) is int, f"{name}: {count!r}"
                assert name.startswith(tier.name + "_"), f"{name} is not named after the tier"

        check()
        self.put(tier, "k")
        tier.get("k")
        tier.get("missing")
        tier.delete("k")
        check()

    # -- get and put ----------------------------------------------------------------------------

    def test_get_of_a_missing_key_is_none(self, tier: Tier) -> None:
        assert tier.get("never-written") is None

    def test_put_then_get_gives_back_the_value_and_its_times(self, tier: Tier) -> None:
        entry, payload = self.entry(VALUE, T0, version='"etag-1"')
        assert tier.put("k", entry, payload, LIFETIME) is None
        got = tier.get("k")
        assert got is not None
        assert same(got.value, VALUE), got.value
        assert (got.stored_at, got.expires_at, got.stale_until) == (T0, T0 + 60, T0 + 90)
        assert got.version == '"etag-1"'
        assert got.is_tombstone is False

    @needs("keeps_bytes")
    def test_the_payload_is_what_is_kept(self, tier: Tier) -> None:
        """A byte-keeping tier stores the payload it is given, never the entry's object."""
        entry = Entry(object(), T0, T0 + 60, T0 + 90)  # not serializable: must not be touched
        tier.put("k", entry, _serial.dumps(VALUE, _serial.SAFE), LIFETIME)
        got = tier.get("k")
        assert got is not None
        assert same(got.value, VALUE)

    @needs("!keeps_bytes")
    def test_the_object_is_what_is_kept(self, tier: Tier) -> None:
        """An object-keeping tier stores the value itself (no payload, nothing serialized)."""
        value = object()
        tier.put("k", Entry(value, T0, T0 + 60, T0 + 90), None, LIFETIME)
        got = tier.get("k")
        assert got is not None
        assert got.value is value

    def test_put_replaces(self, tier: Tier) -> None:
        self.put(tier, "k", "old", T0)
        self.put(tier, "k", "new", T0 + 1)
        got = tier.get("k")
        assert got is not None
        assert (got.value, got.stored_at) == ("new", T0 + 1)

    def test_keys_are_independent(self, tier: Tier) -> None:
        for key in ("k", "K", "k2", "k "):
            self.put(tier, key, f"value of {key!r}")
        assert tier.delete("k") is True
        assert tier.get("k") is None
        for key in ("K", "k2", "k "):
            got = tier.get(key)
            assert got is not None
            assert got.value == f"value of {key!r}"

    @pytest.mark.parametrize("key", list(ODD_KEYS.values()), ids=list(ODD_KEYS))
    def test_an_odd_key_works(self, tier: Tier, key: str) -> None:
        self.put(tier, key, ["odd", key])
        got = tier.get(key)
        assert got is not None
        assert same(got.value, ["odd", key])
        assert tier.delete(key) is True
        assert tier.get(key) is None

    def test_odd_keys_stay_apart(self, tier: Tier) -> None:
        for key in ODD_KEYS.values():
            self.put(tier, key, key)
        for key in ODD_KEYS.values():
            got = tier.get(key)
            assert got is not None
            assert got.value == key

    @needs("keeps_bytes")
    def test_keys_never_become_names_in_the_store(
        self, tier: Tier, tier_kwargs: dict[str, Any]
    ) -> None:
        """Guarantee 4: what the store names (files, rows, Redis keys) is hashed. (The envelope
        itself carries the key, on purpose: a collision or a copied row reads as a miss.)"""
        marker = "plain-KEY-7f3a"
        tier.get("warm-up")  # a lazily made store makes its fixed names now
        self.put(tier, "warm-up")
        before = self.stored_names(tier_kwargs)
        self.put(tier, f"users/{marker}/profile")
        after = self.stored_names(tier_kwargs)
        assert after - before, "the write added no name to the store (is stored_names right?)"
        assert [name for name in after if marker in name] == []

    # -- delete and tombstones ----------------------------------------------------------------

    def test_delete_of_a_live_entry_is_true_then_false(self, tier: Tier) -> None:
        self.put(tier, "k")
        assert tier.delete("k") is True
        assert tier.get("k") is None
        assert tier.delete("k") is False

    def test_delete_of_a_missing_key_is_false(self, tier: Tier) -> None:
        assert tier.delete("never-written") is False
        assert tier.get("never-written") is None

    @needs("keeps_tombstones")
    def test_delete_with_a_tombstone_leaves_it(self, tier: Tier) -> None:
        self.put(tier, "k", stored_at=T0)
        assert tier.delete("k", tombstone(T0 + 5)) is True
        got = tier.get("k")
        assert got is not None
        assert got.is_tombstone is True
        assert got.stored_at == T0 + 5
        assert tier.delete("k", tombstone(T0 + 6)) is False  # a tombstone is not a live entry
        got = tier.get("k")
        assert got is not None
        assert (got.is_tombstone, got.stored_at) == (True, T0 + 6)

    @needs("keeps_tombstones")
    def test_delete_without_a_tombstone_over_one_is_false(self, tier: Tier) -> None:
        """The protocol: True only if a *live* entry was there; a tombstone is none."""
        self.put(tier, "k")
        tier.delete("k", tombstone(T0 + 5))
        assert tier.delete("k") is False
        assert tier.get("k") is None

    @needs("keeps_tombstones")
    def test_a_tombstone_on_an_empty_key(self, tier: Tier) -> None:
        assert tier.delete("k", tombstone(T0)) is False
        got = tier.get("k")
        assert got is not None
        assert got.is_tombstone is True

    @needs("!keeps_tombstones")
    def test_a_tombstone_is_not_kept(self, tier: Tier) -> None:
        self.put(tier, "k")
        assert tier.delete("k", tombstone(T0 + 5)) is True
        assert tier.get("k") is None
        assert tier.delete("k", tombstone(T0 + 6)) is False
        assert tier.get("k") is None

    # -- clear --------------------------------------------------------------------------------

    def test_clear_empties_the_tier(self, tier: Tier) -> None:
        keys = ["a", "b", *ODD_KEYS.values()]
        for key in keys:
            self.put(tier, key)
        tier.delete("b", tombstone(T0 + 1))
        tier.clear()
        assert [key for key in keys if tier.get(key) is not None] == []
        self.put(tier, "a", "again")  # still usable
        got = tier.get("a")
        assert got is not None
        assert got.value == "again"

    def test_clear_spares_other_namespaces(
        self, tier: Tier, neighbour_kwargs: dict[str, Any] | None
    ) -> None:
        if neighbour_kwargs is None:
            pytest.skip(f"{type(self).__name__} gives no neighbour_kwargs (no namespaces)")
        neighbour = type(self).tier_class(**neighbour_kwargs)
        self.put(tier, "k", "mine")
        self.put(neighbour, "k", "theirs")
        got = tier.get("k")
        assert got is not None
        assert got.value == "mine", "the two namespaces share a key"
        tier.clear()
        assert tier.get("k") is None
        got = neighbour.get("k")
        assert got is not None
        assert got.value == "theirs"

    # -- close --------------------------------------------------------------------------------

    def test_close_keeps_the_entries_and_the_tier_usable(self, tier: Tier) -> None:
        self.put(tier, "k", "before")
        tier.close()
        got = tier.get("k")
        assert got is not None, "close() lost an entry"
        assert got.value == "before"
        tier.close()
        tier.close()  # closing a closed tier is harmless
        self.put(tier, "k", "after", T0 + 1)
        got = tier.get("k")
        assert got is not None
        assert got.value == "after"
        with tier.lock("k", 0.5) as held:
            assert held is True

    def test_close_in_another_thread_leaves_this_one_working(self, tier: Tier) -> None:
        self.put(tier, "k", "mine")
        _in_thread(lambda: (tier.get("k"), tier.close()))
        got = tier.get("k")
        assert got is not None
        assert got.value == "mine"
        self.put(tier, "j", "next")
        assert tier.get("j") is not None

    # -- guarded writes -----------------------------------------------------------------------

    @needs("guards")
    def test_guard_refuses_a_write_over_a_newer_entry(self, tier: Tier) -> None:
        self.put(tier, "k", "newer", T0 + 10)
        standing = self.put(tier, "k", "older load", T0 + 5, guard=Guard(T0 + 5, None))
        assert standing is not None, "the guarded write over a newer entry was not refused"
        assert (standing.value, standing.stored_at) == ("newer", T0 + 10)
        got = tier.get("k")
        assert got is not None
        assert (got.value, got.stored_at) == ("newer", T0 + 10)

    @needs("guards")
    def test_guard_refuses_when_seen_is_another_write(self, tier: Tier) -> None:
        self.put(tier, "k", "newer", T0 + 10)
        seen = (T0 + 10, T0 + 11, None)  # same stored_at, another write
        standing = self.put(tier, "k", "load", T0 + 5, guard=Guard(T0 + 5, seen))
        assert standing is not None
        assert standing.value == "newer"

    @needs("guards")
    def test_guard_refuses_a_write_over_a_newer_entry_of_the_same_instant(self, tier: Tier) -> None:
        self.put(tier, "k", "set", T0 + 5)
        standing = self.put(tier, "k", "load", T0 + 5, guard=Guard(T0 + 5, None))
        assert standing is not None
        assert standing.value == "set"

    @needs("guards")
    def test_guard_allows_a_write_over_an_older_entry(self, tier: Tier) -> None:
        self.put(tier, "k", "older", T0)
        assert self.put(tier, "k", "load", T0 + 5, guard=Guard(T0 + 5, None)) is None
        got = tier.get("k")
        assert got is not None
        assert (got.value, got.stored_at) == ("load", T0 + 5)

    @needs("guards")
    def test_guard_allows_a_write_over_the_entry_it_saw(self, tier: Tier) -> None:
        self.put(tier, "k", "seen", T0 + 10)
        current = tier.get("k")
        assert current is not None
        guard = Guard(T0 + 5, current.identity)
        assert self.put(tier, "k", "refresh", T0 + 5, guard=guard) is None
        got = tier.get("k")
        assert got is not None
        assert (got.value, got.stored_at) == ("refresh", T0 + 5)

    @needs("guards")
    def test_guard_allows_a_write_on_an_empty_key(self, tier: Tier) -> None:
        assert self.put(tier, "k", "load", T0, guard=Guard(T0, None)) is None
        got = tier.get("k")
        assert got is not None
        assert got.value == "load"

    @needs("guards", "keeps_tombstones")
    def test_guard_refuses_a_write_over_a_newer_tombstone(self, tier: Tier) -> None:
        self.put(tier, "k", "old", T0)
        tier.delete("k", tombstone(T0 + 10))
        standing = self.put(tier, "k", "load", T0 + 5, guard=Guard(T0 + 5, None))
        assert standing is not None
        assert standing.is_tombstone is True
        got = tier.get("k")
        assert got is not None
        assert got.is_tombstone is True

    @needs("guards")
    def test_guarded_writes_racing_never_go_back_in_time(
        self, tier: Tier, make_tier: Callable[[], Tier]
    ) -> None:
        """Atomic check-and-write: threads write ever newer stamps; a reader never sees the
        stored_at fall, and the newest write is what stays."""
        writers, rounds = 4, 20
        tiers = [self.contender(tier, make_tier) for _ in range(writers)]
        start = threading.Barrier(writers + 1)
        done = threading.Event()

        def write(n: int) -> None:
            start.wait()
            for i in range(rounds):
                stamp = T0 + 1 + n + writers * i
                self.put(tiers[n], "k", f"w{stamp}", stamp, guard=Guard(stamp, None))

        def read() -> list[float]:
            seen: list[float] = []
            start.wait()
            while not done.is_set():
                got = tier.get("k")
                if got is not None:
                    seen.append(got.stored_at)
            return seen

        reader: list[list[float]] = []
        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        threads.append(threading.Thread(target=lambda: reader.append(read())))
        for thread in threads:
            thread.start()
        for thread in threads[:-1]:
            thread.join(CHILD_TIMEOUT)
        done.set()
        threads[-1].join(CHILD_TIMEOUT)
        assert not any(thread.is_alive() for thread in threads)
        seen = reader[0]
        assert seen == sorted(seen), "a guarded write replaced a newer entry"
        got = tier.get("k")
        assert got is not None
        assert got.stored_at == T0 + writers * rounds

    @needs("!guards")
    def test_put_ignores_the_guard(self, tier: Tier) -> None:
        """Pinned: a tier that does not guard writes anyway (last write wins) and returns
        None; the guarded local tiers keep what they have."""
        self.put(tier, "k", "newer", T0 + 10)
        assert self.put(tier, "k", "older load", T0 + 5, guard=Guard(T0 + 5, None)) is None
        got = tier.get("k")
        assert got is not None
        assert (got.value, got.stored_at) == ("older load", T0 + 5)

    # -- lifetime -----------------------------------------------------------------------------

    @needs("honours_lifetime")
    def test_the_lifetime_ends_the_entry(self, tier: Tier) -> None:
        lifetime = self.expiry_lifetime
        self.put(tier, "long", lifetime=LIFETIME)
        written = time.monotonic()
        self.put(tier, "short", lifetime=lifetime)
        assert tier.get("short") is not None, "gone at once: the lifetime was cut short"
        deadline = written + lifetime + 5.0
        while tier.get("short") is not None:  # the store's own clock: wait it out, bounded
            assert time.monotonic() < deadline, f"still there {lifetime + 5} s after its lifetime"
            time.sleep(0.02)
        assert time.monotonic() - written >= 0.8 * lifetime, "gone before its lifetime ended"
        assert tier.get("long") is not None

    @needs("!honours_lifetime")
    def test_the_lifetime_is_ignored(self, tier: Tier) -> None:
        """Pinned: a tier that keeps entries until evicted stores even a lifetime of 0."""
        self.put(tier, "zero", lifetime=0.0)
        self.put(tier, "negative", lifetime=-5.0)
        assert tier.get("zero") is not None
        assert tier.get("negative") is not None

    # -- the lock -----------------------------------------------------------------------------

    def test_lock_is_held_when_free(self, tier: Tier) -> None:
        with tier.lock("k", 1.0) as held:
            assert held is True

    def test_lock_refuses_a_contender_within_its_wait(
        self, tier: Tier, make_tier: Callable[[], Tier]
    ) -> None:
        other = self.contender(tier, make_tier)
        wait = 0.3
        with tier.lock("k", 1.0) as held:
            assert held is True
            got, elapsed = _in_thread(lambda: _try_lock(other, "k", wait))
        assert got is False, "two holders of one lock"
        assert 0.5 * wait <= elapsed <= wait + 1.0, f"refused after {elapsed:.3f} s"

    def test_lock_is_free_again_after_the_block(
        self, tier: Tier, make_tier: Callable[[], Tier]
    ) -> None:
        other = self.contender(tier, make_tier)
        with tier.lock("k", 1.0) as held:
            assert held is True
        got, _ = _in_thread(lambda: _try_lock(other, "k", 0.0))
        assert got is True
        with tier.lock("k", 0.0) as again:
            assert again is True

    def test_lock_with_zero_wait_never_blocks(
        self, tier: Tier, make_tier: Callable[[], Tier]
    ) -> None:
        other = self.contender(tier, make_tier)
        other.get("warm-up")  # its client is made now, not inside the timed call
        with tier.lock("k", 1.0) as held:
            assert held is True
            got, elapsed = _in_thread(lambda: _try_lock(other, "k", 0.0))
        assert got is False
        assert elapsed < 0.25, f"lock(key, 0) took {elapsed:.3f} s"

    def test_lock_waiter_gets_it_once_released(
        self, tier: Tier, make_tier: Callable[[], Tier]
    ) -> None:
        other = self.contender(tier, make_tier)
        result: list[bool] = []
        done = threading.Event()

        def wait_for_it() -> None:
            with other.lock("k", 2.0) as got:
                result.append(got)
            done.set()

        with tier.lock("k", 1.0) as held:
            assert held is True
            waiter = threading.Thread(target=wait_for_it, daemon=True)
            waiter.start()
            assert not done.wait(0.2), "the waiter did not wait for the holder"
        assert done.wait(CHILD_TIMEOUT)
        waiter.join(CHILD_TIMEOUT)
        assert result == [True]

    @needs("process_lock")
    def test_lock_excludes_another_process(self, tier: Tier, tier_kwargs: dict[str, Any]) -> None:
        wait = 0.3
        with _Child(type(self).tier_class, tier_kwargs, _CHILD_HOLD_LOCK, "k") as child:
            assert child.line() == "held"
            got, elapsed = _try_lock(tier, "k", wait)
            assert got is False, "this process took a lock another process holds"
            assert 0.5 * wait <= elapsed <= wait + 1.0, f"refused after {elapsed:.3f} s"
            child.send("release")
            assert child.line() == "released"
            got, _ = _try_lock(tier, "k", 1.0)
            assert got is True

    # -- instances and processes on one store -------------------------------------------------

    @needs("shared_between_processes")
    def test_a_second_instance_sees_the_writes(
        self, tier: Tier, make_tier: Callable[[], Tier]
    ) -> None:
        other = make_tier()
        self.put(tier, "k", VALUE, T0)
        got = other.get("k")
        assert got is not None
        assert same(got.value, VALUE)
        assert got.stored_at == T0
        assert other.delete("k") is True
        assert tier.get("k") is None

    @needs("shared_between_processes")
    def test_another_process_reads_and_writes_the_same_store(
        self, tier: Tier, tier_kwargs: dict[str, Any]
    ) -> None:
        entry, payload = self.entry(VALUE, T0, version="parent")
        tier.put("from-parent", entry, payload, LIFETIME)
        child_value = {"child": [1, 2.5, b"\x01", None, True]}
        script, factory = _CHILD_READ_WRITE, type(self).tier_class
        with _Child(
            factory, tier_kwargs, script, "from-parent", "from-child", repr(child_value)
        ) as c:
            fields = json.loads(c.line())
            assert c.line() == "None"  # the child's put
        assert fields is not None, "the other process did not see the write"
        value_repr, stored_at, expires_at, stale_until, version = fields
        assert same(ast.literal_eval(value_repr), VALUE)
        assert (stored_at, expires_at, stale_until, version) == (T0, T0 + 60, T0 + 90, "parent")
        got = tier.get("from-child")
        assert got is not None, "this process did not see the other process's write"
        assert same(got.value, child_value)
        assert (got.stored_at, got.version) == (2.0e6, "child")

    # -- faults ---------------------------------------------------------------------------------

    @pytest.fixture
    def broken(self, broken_kwargs: dict[str, Any] | None) -> Tier:
        if broken_kwargs is None:
            pytest.skip(f"{type(self).__name__} gives no broken_kwargs (no cheap fault)")
        return type(self).tier_class(**broken_kwargs)

    def test_fault_get_is_a_miss(self, broken: Tier) -> None:
        assert broken.get("k") is None
        if self.fault_counter is not None:
            assert broken.stats()[self.fault_counter] >= 1, "no fault was met: is it broken?"

    def test_fault_put_is_skipped(self, broken: Tier) -> None:
        assert self.put(broken, "k") is None
        assert self.put(broken, "k", "load", T0 + 5, guard=Guard(T0 + 5, None)) is None
        assert broken.get("k") is None

    def test_fault_delete_is_false(self, broken: Tier) -> None:
        assert broken.delete("k") is False
        assert broken.delete("k", tombstone(T0)) is False

    def test_fault_lock_is_not_held(self, broken: Tier) -> None:
        held, elapsed = _try_lock(broken, "k", 0.5)
        assert held is False
        assert elapsed <= 1.5

    def test_fault_clear_and_stats_do_not_raise(self, broken: Tier) -> None:
        broken.clear()
        stats = broken.stats()
        assert all(type(count) is int for count in stats.values())
        if self.fault_counter is not None:
            assert stats[self.fault_counter] >= 1, "no fault was met: is it broken?"
