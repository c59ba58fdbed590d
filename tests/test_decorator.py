"""Item 11: ``@tiered.cache`` on functions and methods; templates, callable and default keys;
``.cache_key``, ``.invalidate``, ``.refresh``, ``__wrapped__``; bare use; wraps metadata; async
functions refused at decoration with a clear TypeError (the documented choice).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import tiered_cache as tiered


class Counter:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []


def test_template_key_filled_from_bound_arguments_with_defaults(cache: Any) -> None:
    seen = Counter()

    @cache.cache(key="report:{day}:{fmt}", ttl=3600)
    def build_report(day: str, fmt: str = "pdf") -> str:
        seen.calls.append((day, fmt))
        return f"{day}.{fmt}"

    assert build_report.cache_key("2026-11-28") == "report:2026-11-28:pdf"
    assert build_report.cache_key(day="2026-11-28", fmt="csv") == "report:2026-11-28:csv"
    assert build_report("2026-11-28") == "2026-11-28.pdf"
    assert build_report(day="2026-11-28") == "2026-11-28.pdf"  # same key, bound by name
    assert build_report("2026-11-28", "pdf") == "2026-11-28.pdf"
    assert seen.calls == [("2026-11-28", "pdf")]
    assert cache.get("report:2026-11-28:pdf") == "2026-11-28.pdf"


def test_template_with_attribute_and_index_fields(cache: Any) -> None:
    @cache.cache(key="user:{user[id]}:{opts.mode}")
    def fetch(user: dict[str, int], opts: Any) -> int:
        return user["id"]

    class Opts:
        mode = "fast"

    assert fetch.cache_key({"id": 7}, Opts()) == "user:7:fast"


def test_template_naming_an_unknown_parameter_is_refused_at_decoration(cache: Any) -> None:
    with pytest.raises(TypeError, match=r"no parameter 'dya'.*\['day'\]"):

        @cache.cache(key="report:{dya}")
        def build_report(day: str) -> str:
            return day


def test_template_with_varargs_and_kwargs(cache: Any) -> None:
    @cache.cache(key="sum:{args}:{kw}")
    def add(*args: int, **kw: int) -> int:
        return sum(args) + sum(kw.values())

    assert add.cache_key(1, 2, z=3) == "sum:(1, 2):{'z': 3}"
    assert add(1, 2, z=3) == 6


def test_missing_argument_raises_the_usual_typeerror(cache: Any) -> None:
    @cache.cache(key="x:{a}")
    def f(a: int, b: int) -> int:
        return a + b

    with pytest.raises(TypeError, match="missing"):
        f(1)  # type: ignore[call-arg]


def test_static_template(cache: Any) -> None:
    calls: list[int] = []

    @cache.cache(key="the-config")
    def load(env: str) -> str:
        calls.append(1)
        return env

    assert load("a") == "a"
    assert load("b") == "a"  # one key for every call, by choice of template
    assert load.cache_key("zzz") == "the-config"
    assert calls == [1]


def test_callable_key(cache: Any) -> None:
    @cache.cache(key=lambda user_id, region="eu": f"u:{region}:{user_id}")
    def profile(user_id: int, region: str = "eu") -> dict[str, Any]:
        return {"id": user_id, "region": region}

    assert profile.cache_key(5) == "u:eu:5"
    assert profile(5, region="us") == {"id": 5, "region": "us"}
    assert cache.get("u:us:5") == {"id": 5, "region": "us"}


def test_callable_key_must_return_a_str(cache: Any) -> None:
    @cache.cache(key=lambda x: x)
    def f(x: Any) -> Any:
        return x

    with pytest.raises(TypeError, match="returned int, not str"):
        f(1)


def test_bad_key_argument_is_refused(cache: Any) -> None:
    with pytest.raises(TypeError, match="key must be"):
        cache.cache(key=42)(lambda: 1)


def test_default_key_is_module_qualname_and_arguments(cache: Any) -> None:
    @cache.cache
    def area(w: int, h: float = 2.0, *, unit: str = "m", tags: Any = None) -> float:
        return w * h

    owner = f"{__name__}.test_default_key_is_module_qualname_and_arguments.<locals>.area"
    assert area.cache_key(3) == f"{owner}(w=3, h=2.0, unit='m', tags=None)"
    assert area.cache_key(3, 2.0) == area.cache_key(w=3, unit="m")
    assert area.cache_key(3, tags={"b": [1, (2,)], "a": b"x"}) == (
        f"{owner}(w=3, h=2.0, unit='m', tags={{'a':b'x','b':[1,(2)]}})"
    )
    assert area.cache_key(1) != area.cache_key(True)  # bool is not int here


def test_positional_and_keyword_calls_share_one_default_key(cache: Any) -> None:
    calls: list[int] = []

    @cache.cache
    def area(w: int, h: float = 2.0, *, unit: str = "m") -> float:
        calls.append(w)
        return w * h

    assert area(3) == area(w=3) == area(3, h=2.0) == area(3, 2.0, unit="m") == 6.0
    assert calls == [3]
    assert len({area.cache_key(3), area.cache_key(w=3), area.cache_key(3, unit="m")}) == 1


def test_default_key_without_parameters(cache: Any) -> None:
    calls: list[int] = []

    @cache.cache
    def config() -> str:
        calls.append(1)
        return "cfg"

    assert config() == config() == "cfg"
    assert config.cache_key().endswith("config()")
    assert calls == [1]


_KEY_CHILD = """
import json, sys
sys.path.insert(0, sys.argv[1])
import keymod
print(json.dumps([keymod.f.cache_key(*args) for args in json.loads(sys.argv[2])]))
"""

_KEY_MODULE = """
import tiered_cache as tiered

@tiered.cache
def f(a, b=None, *rest, **kw):
    return a
"""


def test_default_key_is_stable_across_processes(tmp_path: Any, python_subprocess: Any) -> None:
    (tmp_path / "keymod.py").write_text(_KEY_MODULE)
    calls = [
        ["x", None],
        [1.5, [1, "two", None]],
        [{"b": 1, "a": [True, False]}, b"\x00".decode()],
        [2**70, {"z": {"y": 0.1}}, "extra", 3],
    ]
    script = _KEY_CHILD
    first = json.loads(python_subprocess(script, str(tmp_path), json.dumps(calls)).stdout)
    second = json.loads(
        python_subprocess(
            script, str(tmp_path), json.dumps(calls), env={"PYTHONHASHSEED": "12345"}
        ).stdout
    )
    assert first == second
    assert len(set(first)) == len(calls)
    assert first[0] == "keymod.f(a='x', b=None, rest=(), kw={})"


@pytest.mark.parametrize(
    "arg", [object(), {1, 2}, frozenset(), 1 + 2j, [object()], {"k": object()}, bytearray()]
)
def test_unstable_argument_asks_for_key(cache: Any, arg: Any) -> None:
    @cache.cache
    def f(x: Any) -> Any:
        return x

    with pytest.raises(TypeError, match="key="):
        f(arg)
    with pytest.raises(TypeError, match="key="):
        f.cache_key(arg)


def test_invalidate_and_refresh(make_cache: Any) -> None:
    cache = make_cache()
    calls: list[str] = []

    @cache.cache(key="report:{day}")
    def build_report(day: str) -> str:
        calls.append(day)
        return f"{day}#{len(calls)}"

    assert build_report("d") == "d#1"
    assert build_report("d") == "d#1"
    assert build_report.invalidate("d") is True
    assert build_report.invalidate("d") is False
    assert make_cache().get("report:d") is None  # gone from disk too
    assert build_report("d") == "d#2"
    assert build_report.refresh("d") == "d#3"
    assert build_report("d") == "d#3"
    assert make_cache().get("report:d") == "d#3"
    assert calls == ["d", "d", "d"]


def test_wrapped_and_wraps_metadata(cache: Any) -> None:
    def original(a: int, b: str = "x") -> str:
        """The docstring."""
        return b * a

    wrapped = cache.cache(key="k:{a}:{b}")(original)
    assert wrapped.__wrapped__ is original
    assert wrapped.__name__ == "original"
    assert wrapped.__qualname__ == original.__qualname__
    assert wrapped.__doc__ == "The docstring."
    assert wrapped.__module__ == __name__
    import inspect

    assert inspect.signature(wrapped) == inspect.signature(original)


def test_bare_decorator_uses_the_default_cache() -> None:
    calls: list[int] = []

    @tiered.cache
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert square(4) == 16
    assert square(4) == 16
    assert calls == [4]
    default = tiered.default_cache()
    assert default.get(square.cache_key(4)) == 16
    assert default.stats()["memory_hits"] >= 1


def test_decorator_with_positional_template_and_options() -> None:
    calls: list[int] = []

    @tiered.cache("sq:{x}", ttl=5)
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert square(3) == 9
    assert square.cache_key(3) == "sq:3"
    assert tiered.default_cache().get("sq:3") == 9
    with pytest.raises(TypeError, match="once"):
        tiered.cache("a", key="b")
    with pytest.raises(TypeError, match="not callable"):
        tiered.cache(42)  # type: ignore[call-overload]


def test_methods_with_a_template_on_self(cache: Any) -> None:
    class Service:
        def __init__(self, name: str) -> None:
            self.name = name
            self.calls = 0

        @cache.cache(key="svc:{self.name}:{item}")
        def lookup(self, item: str) -> str:
            self.calls += 1
            return f"{self.name}/{item}"

    a, b = Service("a"), Service("b")
    assert a.lookup("x") == "a/x"
    assert a.lookup("x") == "a/x"
    assert b.lookup("x") == "b/x"
    assert (a.calls, b.calls) == (1, 1)
    assert Service.lookup.cache_key(a, "x") == "svc:a:x"
    assert cache.get("svc:b:x") == "b/x"


def test_method_with_default_key_asks_for_key(cache: Any) -> None:
    class Service:
        @cache.cache
        def lookup(self, item: str) -> str:
            return item

    with pytest.raises(TypeError, match="key="):
        Service().lookup("x")


def test_static_and_class_methods(cache: Any) -> None:
    class Service:
        @staticmethod
        @cache.cache(key="static:{x}")
        def double(x: int) -> int:
            return 2 * x

        @classmethod
        @cache.cache(key="cls:{cls.__name__}:{x}")
        def named(cls, x: int) -> str:
            return f"{cls.__name__}{x}"

    assert Service.double(2) == 4
    assert Service.named(1) == "Service1"
    assert cache.get("static:2") == 4
    assert cache.get("cls:Service:1") == "Service1"


def test_async_functions_are_refused_at_decoration(cache: Any) -> None:
    async def coro(x: int) -> int:
        await asyncio.sleep(0)
        return x

    async def agen() -> Any:
        yield 1

    with pytest.raises(TypeError, match="async"):
        cache.cache(coro)
    with pytest.raises(TypeError, match="async"):
        tiered.cache(key="k")(coro)
    with pytest.raises(TypeError, match="async"):
        cache.cache(agen)


def test_ttl_option_expires_and_bounds_age(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(ttl=1000)
    calls: list[int] = []

    @cache.cache(key="k", ttl=10)
    def short() -> int:
        calls.append(1)
        return len(calls)

    @cache.cache(key="k")
    def long() -> int:
        calls.append(1)
        return len(calls)

    assert short() == 1
    fake_clock.advance(9.5)
    assert short() == 1
    fake_clock.advance(0.5)
    assert short() == 2  # expired at exactly ttl
    cache.set("k", 99)  # stored for the cache's 1000 s
    fake_clock.advance(20)
    assert long() == 99  # no ttl of its own: stored expiry alone
    assert short() == 3  # its own ttl bounds the age: 20 s is too old


@pytest.mark.parametrize("ttl", [-1, "10", True])
def test_bad_ttl_is_refused_at_decoration(cache: Any, ttl: Any) -> None:
    with pytest.raises(TypeError, match="ttl"):
        cache.cache(key="k", ttl=ttl)(lambda: 1)


def test_stale_if_error_and_persist_options(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache()
    fail = [False]

    @cache.cache(key="k", ttl=10, stale_if_error=30, persist=False)
    def fetch() -> str:
        if fail[0]:
            raise ConnectionError("down")
        return "good"

    assert fetch() == "good"
    assert make_cache().get("k") is None  # persist=False: memory only
    fake_clock.advance(20)
    fail[0] = True
    assert fetch() == "good"
    fake_clock.advance(30)
    with pytest.raises(ConnectionError, match="down"):
        fetch()


def test_hit_path_counts_and_serves_without_calling(cache: Any) -> None:
    calls: list[int] = []

    @cache.cache(key="hot")
    def hot() -> int:
        calls.append(1)
        return 7

    for _ in range(100):
        assert hot() == 7
    assert calls == [1]
    assert cache.stats()["memory_hits"] >= 99


def test_decorator_over_two_caches_is_independent(make_cache: Any, tmp_path: Any) -> None:
    one = make_cache()
    two = make_cache(directory=str(tmp_path / "other"))

    @one.cache(key="k")
    def a() -> str:
        return "one"

    @two.cache(key="k")
    def b() -> str:
        return "two"

    assert (a(), b()) == ("one", "two")
    assert one.get("k") == "one"
    assert two.get("k") == "two"
