"""``@tiered.cache`` on functions, methods, partials and callable instances.

Templates, callable and default keys; ``.cache_key``, ``.invalidate``, ``.refresh``,
``__wrapped__``; bare use; wraps metadata. Keys are checked against what the generic path made
before the wrappers were generated (``inspect.signature(...).bind`` + ``apply_defaults`` +
``str.format_map`` for templates, ``stable_repr`` of each bound argument for default keys), for
many templates and signatures. Default keys that could collide (lambdas, functions made inside
functions, partials, callable instances, an interactive ``__main__``) are refused at
decoration; a script's ``__main__`` has its path in its keys (two scripts run as real
processes on one directory). Templates are checked at decoration. A function decorated with
``tiered.cache`` follows the default cache. Bad ``ttl`` and ``stale_if_error`` values are refused
at decoration with an error naming the argument. Async functions: tests/test_decorator_async.py.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import tiered_cache as tiered
from tiered_cache._decorator import stable_repr

REPO_ROOT = Path(__file__).resolve().parent.parent

_SERIAL = itertools.count()


def serial() -> int:
    """A new number on every call: a cached result repeats one, a second call would not."""
    return next(_SERIAL)


# -- module-level functions for default keys (functions made inside a test are refused) -------


@tiered.cache
def area(w: int, h: float = 2.0, *, unit: str = "m", tags: Any = None) -> tuple[float, int]:
    return w * h, serial()


@tiered.cache
def config() -> tuple[str, int]:
    return "cfg", serial()


@tiered.cache
def identity(x: Any) -> Any:
    return x


@tiered.cache
def square(x: int) -> tuple[int, int]:
    return x * x, serial()


@tiered.cache
def everything(a: Any, b: Any = 2, /, c: Any = 3, *rest: Any, d: Any, e: Any = 5, **kw: Any) -> int:
    return serial()


@tiered.cache
def positional_only(a: Any, b: Any = None, /) -> int:
    return serial()


@tiered.cache
def keyword_only(*, a: Any, b: Any = (1, [2])) -> int:
    return serial()


@tiered.cache
def with_reserved_names(cache: Any, now: Any = 1, *, entry: Any = None) -> int:
    return serial()


@tiered.cache
def with_builtin_names(type: Any, str: Any = "s", *, repr: Any = 0, getattr: Any = None) -> int:
    return serial()


class Service:
    @tiered.cache
    def lookup(self, item: str) -> str:
        return item


def _old_default_key(func: Any, owner: str, *args: Any, **kwargs: Any) -> str:
    """The default key as the generic path made it (and must still make it, byte for byte)."""
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.apply_defaults()
    inner = ", ".join(f"{k}={stable_repr(v, owner)}" for k, v in bound.arguments.items())
    return f"{owner}({inner})"


def _format_map(func: Any, template: str, *args: Any, **kwargs: Any) -> str:
    """A template's key as the generic path made it."""
    bound = inspect.signature(func).bind(*args, **kwargs)
    bound.apply_defaults()
    return template.format_map(bound.arguments)


# -- templates -----------------------------------------------------------------------------


def test_template_key_filled_from_bound_arguments_with_defaults(cache: Any) -> None:
    seen: list[tuple[str, str]] = []

    @cache.cache(key="report:{day}:{fmt}", ttl=3600)
    def build_report(day: str, fmt: str = "pdf") -> str:
        seen.append((day, fmt))
        return f"{day}.{fmt}"

    assert build_report.cache_key("2026-11-28") == "report:2026-11-28:pdf"
    assert build_report.cache_key(day="2026-11-28", fmt="csv") == "report:2026-11-28:csv"
    assert build_report("2026-11-28") == "2026-11-28.pdf"
    assert build_report(day="2026-11-28") == "2026-11-28.pdf"  # same key, bound by name
    assert build_report("2026-11-28", "pdf") == "2026-11-28.pdf"
    assert seen == [("2026-11-28", "pdf")]
    assert cache.get("report:2026-11-28:pdf") == "2026-11-28.pdf"


def test_template_with_attribute_and_index_fields(cache: Any) -> None:
    @cache.cache(key="user:{user[id]}:{opts.mode}")
    def fetch(user: dict[str, int], opts: Any) -> int:
        return user["id"]

    class Opts:
        mode = "fast"

    assert fetch.cache_key({"id": 7}, Opts()) == "user:7:fast"


class Thing:
    """An object for attribute fields, including names only getattr can read."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.inner = {"k": name.upper(), 3: "three"}
        setattr(self, "0", "zero")  # '{t.0}' reads an attribute named '0'
        setattr(self, "class", "klass")  # '{t.class}': a keyword as a name

    def __repr__(self) -> str:
        return f"Thing({self.name!r})"


def sig_plain(a: Any, b: Any = "dflt", c: Any = 3) -> Any:
    return a


def sig_positional_only(a: Any, b: Any = 2.5, /, c: Any = None) -> Any:
    return a


def sig_keyword_only(a: Any, *, b: Any, c: Any = "kw") -> Any:
    return a


def sig_variadic(a: Any, *args: Any, k: Any = 1, **kw: Any) -> Any:
    return a


def sig_object(t: Any, d: Any = None, n: Any = 7) -> Any:
    return t


WHEN = datetime.datetime(2026, 11, 28, 13, 45, 6)

TEMPLATE_CASES: list[tuple[Any, str, tuple[Any, ...], dict[str, Any]]] = [
    (sig_plain, "{a}", ("x",), {}),
    (sig_plain, "r:{a}:{b}:{c}", ("x",), {}),
    (sig_plain, "r:{a}:{b}:{c}", (), {"c": 9, "a": "y"}),
    (sig_plain, "{a!r}|{b!s}|{c!a}", ("caf\u00e9", "\u00e9t\u00e9"), {"c": "\u2603"}),
    (sig_plain, "{a:>8}|{b:_^9}|{c:08.3f}", ("ab", "mid"), {}),
    (sig_plain, "{a!r:>12}|{c:+}|{c:#x}|{c:,}", ("q",), {"c": 1234567}),
    (sig_plain, '{a:"^7}|{b:\u00e9<6}|{c:\\^5}|{c:#>6x}', ("q",), {}),
    (sig_plain, "{a:%Y-%m-%d %H:%M:%S}|{b:%j}", (WHEN, WHEN), {}),
    (sig_plain, "lit \"dq\" 'sq' \\back\\slash\n\ttab {{braces}} \u00e9 {a}", ("x",), {}),
    (sig_plain, "{a}{a}{a!r}{{{a}}}", (12,), {}),
    (sig_plain, "{a[0]}|{a[1][0]}|{a[-1]}", ({0: "z", 1: "one", "-1": "neg"},), {}),
    (
        sig_plain,
        "{a[x]}|{a[ x ]}|{a[#]}|{a[\"]}|{a[']}|{a[\\]}",
        ({"x": 1, " x ": 2, "#": 3, '"': 4, "'": 5, "\\": 6},),
        {},
    ),
    (sig_plain, "{a[00]}|{a[007]}", ({0: "zero", 7: "seven"},), {}),
    (sig_positional_only, "{a}:{b}:{c}", (1,), {}),
    (sig_positional_only, "{a}:{b:.1f}:{c!r}", (1, 3), {"c": "c"}),
    (sig_keyword_only, "{a}:{b}:{c}", ("x",), {"b": "B"}),
    (sig_keyword_only, "{b!r}/{c}/{a}", (), {"a": 1, "b": None, "c": False}),
    (sig_variadic, "{a}:{args}:{k}:{kw}", ("x",), {}),
    (sig_variadic, "{a}:{args}:{args[0]}:{k}:{kw}:{kw[z]}", ("x", 1, 2), {"z": 3, "k": 4}),
    (sig_object, "svc:{t.name}:{t.inner[k]}:{t.inner[3]}", (Thing("a"),), {}),
    (sig_object, "{t.0}|{t.class}|{t.name.upper}|{t!r}", (Thing("b"),), {}),
    (sig_object, "{t.name!r:>9}|{d}|{n:03d}", (Thing("c"),), {}),
    (sig_object, "{t.__class__.__name__}:{n.real}:{n.imag}", (Thing("d"),), {"n": 5}),
]


@pytest.mark.parametrize(
    ("func", "template", "args", "kwargs"),
    TEMPLATE_CASES,
    ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(TEMPLATE_CASES)],
)
def test_template_key_equals_format_map_of_the_bound_arguments(
    make_cache: Any, func: Any, template: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    cache = make_cache(disk=False)  # memory only: any value may be stored
    wrapped = cache.cache(key=template)(func)
    expected = _format_map(func, template, *args, **kwargs)
    assert wrapped.cache_key(*args, **kwargs) == expected
    result = wrapped(*args, **kwargs)
    assert result is func(*args, **kwargs)
    assert cache.get(expected) is result  # the call stored it under that very key


def test_template_naming_an_unknown_parameter_is_refused_at_decoration(cache: Any) -> None:
    with pytest.raises(TypeError, match=r"no parameter 'dya'.*\['day'\]"):

        @cache.cache(key="report:{dya}")
        def build_report(day: str) -> str:
            return day

    with pytest.raises(TypeError, match=r"no parameter 'dya'"):
        cache.cache(key="report:{dya.attr[0]}")(sig_plain)


def test_template_with_varargs_and_kwargs(cache: Any) -> None:
    @cache.cache(key="sum:{args}:{kw}")
    def add(*args: int, **kw: int) -> int:
        return sum(args) + sum(kw.values())

    assert add.cache_key(1, 2, z=3) == "sum:(1, 2):{'z': 3}"
    assert add(1, 2, z=3) == 6
    assert cache.get("sum:(1, 2):{'z': 3}") == 6


def test_missing_or_wrong_arguments_raise_the_usual_typeerror(cache: Any) -> None:
    calls: list[int] = []

    @cache.cache(key="x:{a}")
    def f(a: int, b: int, /, *, c: int = 0) -> int:
        calls.append(a)
        return a + b

    with pytest.raises(TypeError, match=r"f\(\) missing 1 required positional argument: 'b'"):
        f(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="positional-only"):
        f(a=1, b=2)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="takes 2 positional arguments"):
        f(1, 2, 3)  # type: ignore[misc]
    with pytest.raises(TypeError, match="unexpected keyword argument 'd'"):
        f(1, 2, d=4)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="missing"):
        f.cache_key(1)  # type: ignore[call-arg]
    assert f(1, 2) == 3
    with pytest.raises(TypeError, match="takes 2 positional"):
        f(1, 2, 3)  # type: ignore[misc]  # also on a hit: the arguments are bound first
    assert calls == [1]


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


def test_a_template_without_fields_is_the_key_as_written(cache: Any) -> None:
    # As before the wrappers were generated: a template without fields is not formatted, so
    # existing entries keep their keys ("{{" stays "{{").
    wrapped = cache.cache(key="cfg:{{literal}}")(lambda: 1)
    assert wrapped.cache_key() == "cfg:{{literal}}"


@pytest.mark.parametrize(
    ("template", "error", "message"),
    [
        ("{a:{width}}", TypeError, r"inside a format spec .*\{a:>10\}.*key=lambda a"),
        ("{a!r:>{w}}", TypeError, r"inside a format spec"),
        ("{}", TypeError, r"fields name parameters"),
        ("x:{0}", TypeError, r"fields name parameters"),
        ("{1[a]}", TypeError, r"fields name parameters"),
        ("{a", ValueError, r"malformed .*expected '\}'"),
        ("a}", ValueError, r"malformed .*Single '\}'"),
        ("{a!x}", ValueError, r"conversion !x; use !r, !s or !a"),
        ("{a!rr}", ValueError, r"malformed"),
        ("{a.}", ValueError, r"malformed"),
        ("{a[b]c}", ValueError, r"malformed"),
        ("{a[}", ValueError, r"malformed"),
    ],
)
def test_bad_templates_are_refused_at_decoration(
    cache: Any, template: str, error: type[Exception], message: str
) -> None:
    def f(a: Any, width: int = 5) -> Any:
        return a

    with pytest.raises(error, match=message):
        cache.cache(key=template)(f)


# -- callable keys -------------------------------------------------------------------------


def test_callable_key(cache: Any) -> None:
    @cache.cache(key=lambda user_id, region="eu": f"u:{region}:{user_id}")
    def profile(user_id: int, region: str = "eu") -> dict[str, Any]:
        return {"id": user_id, "region": region}

    assert profile.cache_key(5) == "u:eu:5"
    assert profile(5, region="us") == {"id": 5, "region": "us"}
    assert cache.get("u:us:5") == {"id": 5, "region": "us"}


def test_callable_key_gets_the_bound_arguments(cache: Any) -> None:
    seen: list[tuple[Any, ...]] = []

    def key(a: Any, b: Any, *rest: Any, c: Any, **kw: Any) -> str:
        seen.append((a, b, rest, c, kw))
        return f"k:{a}:{b}:{rest}:{c}:{sorted(kw)}"

    @cache.cache(key=key)
    def f(a: Any, b: Any = "B", *rest: Any, c: Any = "C", **kw: Any) -> str:
        return "v"

    assert f.cache_key(1) == "k:1:B:():C:[]"
    assert f.cache_key(b=2, a=1, z=0) == "k:1:2:():C:['z']"
    assert f(1, 2, 3, c=4) == "v"
    assert cache.get("k:1:2:(3,):4:[]") == "v"
    assert seen[0] == (1, "B", (), "C", {})


@pytest.mark.parametrize("bad", [1, None, b"bytes", ["unhashable"]])
def test_callable_key_must_return_a_str(cache: Any, bad: Any) -> None:
    @cache.cache(key=lambda x: bad)
    def f(x: Any) -> Any:
        return x

    with pytest.raises(TypeError, match=f"returned {type(bad).__name__}, not str"):
        f(1)
    with pytest.raises(TypeError, match="not str"):
        f.cache_key(1)


def test_callable_key_may_return_a_str_subclass(cache: Any) -> None:
    class Key(str):
        pass

    @cache.cache(key=lambda x: Key(f"sub:{x}"))
    def f(x: Any) -> Any:
        return x

    assert f(3) == 3
    assert f.cache_key(3) == "sub:3"
    assert cache.get("sub:3") == 3


def test_bad_key_argument_is_refused(cache: Any) -> None:
    with pytest.raises(TypeError, match="key must be"):
        cache.cache(key=42)(lambda: 1)


# -- default keys ----------------------------------------------------------------------------


def test_default_key_is_module_qualname_and_arguments() -> None:
    owner = f"{__name__}.area"
    assert area.cache_key(3) == f"{owner}(w=3, h=2.0, unit='m', tags=None)"
    assert area.cache_key(3, 2.0) == area.cache_key(w=3, unit="m")
    assert area.cache_key(3, tags={"b": [1, (2,)], "a": b"x"}) == (
        f"{owner}(w=3, h=2.0, unit='m', tags={{'a':b'x','b':[1,(2)]}})"
    )
    assert area.cache_key(1) != area.cache_key(True)  # bool is not int here


DEFAULT_CASES: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = [
    (area, (3,), {}),
    (area, ("x'y\"z\\", 1.5), {"unit": "\u00e9\n", "tags": None}),
    (area, (True, False), {"tags": (1, [2.5, None], {"k": b"\x00"})}),
    (area, (2**70, -0.0), {"unit": float("inf"), "tags": float("nan")}),
    (area, (None,), {"tags": {"b": {"c": []}, "a": ()}}),
    (config, (), {}),
    (square, (4,), {}),
    (square, ("{braces} {{x}}",), {}),
    (everything, (1,), {"d": 4}),
    (everything, (1, 2, 3, 4, 5), {"d": "d", "z": 0, "a_": [1]}),
    (everything, ("a", ("t",)), {"c": [1], "d": None, "e": {"x": 1}}),
    (positional_only, (1,), {}),
    (positional_only, ("a", ("b", 2)), {}),
    (keyword_only, (), {"a": 1}),
    (keyword_only, (), {"b": "B", "a": b"A"}),
    (with_reserved_names, ("c",), {}),
    (with_reserved_names, (1, 2), {"entry": (3,)}),
    (with_builtin_names, ("t",), {}),
    (with_builtin_names, ("t", "u"), {"repr": 1.5, "getattr": [None]}),
]


@pytest.mark.parametrize(
    ("func", "args", "kwargs"),
    DEFAULT_CASES,
    ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(DEFAULT_CASES)],
)
def test_default_key_is_byte_identical_to_the_generic_path(
    func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    owner = f"{__name__}.{func.__name__}"
    expected = _old_default_key(func.__wrapped__, owner, *args, **kwargs)
    assert func.cache_key(*args, **kwargs) == expected


def test_positional_and_keyword_calls_share_one_default_key(default: Any) -> None:
    first = area(3)
    assert area(w=3) == area(3, h=2.0) == area(3, 2.0, unit="m") == first
    assert len({area.cache_key(3), area.cache_key(w=3), area.cache_key(3, unit="m")}) == 1
    assert default.get(area.cache_key(3)) == first


def test_default_key_without_parameters(default: Any) -> None:
    assert config() == config()
    assert config.cache_key() == f"{__name__}.config()"
    assert default.get(f"{__name__}.config()") == config()


def test_parameters_named_like_the_hit_paths_own_names(default: Any) -> None:
    first = with_reserved_names("c")
    assert with_reserved_names("c", now=1) == with_reserved_names(cache="c") == first
    assert with_reserved_names("c", 2) != first
    with pytest.raises(TypeError):
        with_reserved_names()  # type: ignore[call-arg]

    @default.cache(key="r:{cache}:{now}:{entry}:{clock}")
    def f(cache: Any, now: Any = 0, *, entry: Any = None, clock: Any = "c") -> Any:
        return (cache, now, entry, clock)

    assert f("a") == ("a", 0, None, "c")
    assert f.cache_key("a", entry=1) == "r:a:0:1:c"
    assert default.get("r:a:0:None:c") == ("a", 0, None, "c")


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


class Text(str):
    pass


@pytest.mark.parametrize(
    "arg",
    [object(), {1, 2}, frozenset(), 1 + 2j, [object()], {"k": object()}, bytearray(), Text("s")],
)
def test_unstable_argument_asks_for_key(default: Any, arg: Any) -> None:
    with pytest.raises(TypeError, match="key="):
        identity(arg)
    with pytest.raises(TypeError, match="key="):
        identity.cache_key(arg)


def test_method_with_default_key_asks_for_key() -> None:
    with pytest.raises(TypeError, match=r"'Service'.*key="):
        Service().lookup("x")


def test_parameters_named_like_builtins(make_cache: Any) -> None:
    cache = make_cache(disk=False)

    @cache.cache(key=lambda type, str, getattr=None: f"c:{type}:{str}")
    def keyed(type: Any, str: Any, getattr: Any = None) -> Any:
        return (type, str, getattr)

    @cache.cache(key="t:{type.__name__}:{str!r}:{getattr[0]}")
    def templated(type: Any, str: Any, getattr: Any = (9,)) -> Any:
        return (type, str, getattr)

    assert keyed(1, "x") == (1, "x", None)
    assert cache.get("c:1:x") == (1, "x", None)
    assert templated(int, "s") == (int, "s", (9,))
    assert templated.cache_key(int, "s") == "t:int:'s':9"
    assert with_builtin_names.cache_key("t", repr=2) == (
        f"{__name__}.with_builtin_names(type='t', str='s', repr=2, getattr=None)"
    )
    with pytest.raises(TypeError, match=r"'type'.*key="):
        with_builtin_names.cache_key(int)  # a class is not a stable argument


def test_a_wrapped_builtin_gets_its_arguments_as_given(cache: Any) -> None:
    @functools.wraps(int)
    def to_int(*args: Any, **kwargs: Any) -> int:
        return int(*args, **kwargs)

    wrapped = cache.cache(key=lambda *a, **k: f"i:{a}:{k}")(to_int)
    assert wrapped(3.5) == 3  # int's defaults are not passed on (int(3.5, base=10) fails)
    assert wrapped("ff", base=16) == 255


def _make_getter() -> Any:
    def get(k: int) -> int:
        return k

    return get


class CallMe:
    def __call__(self, x: int) -> int:
        return x


@pytest.mark.parametrize(
    ("func", "why"),
    [
        (lambda x: x, "lambda"),
        (_make_getter(), "inside a function"),
        (functools.partial(sig_plain, "a"), "no stable name"),
        (CallMe(), "no stable name"),
    ],
    ids=["lambda", "factory", "partial", "callable-instance"],
)
def test_default_keys_that_could_collide_are_refused(func: Any, why: str) -> None:
    with pytest.raises(TypeError, match=f"{why}.*nothing stable tells two of them apart.*key="):
        tiered.cache(func)


def test_factory_made_functions_with_a_key_do_not_collide(default: Any) -> None:
    def make_getter(base: int) -> Any:
        @tiered.cache(key=f"getter:{base}:{{k}}")
        def get(k: int) -> int:
            return base + k

        return get

    one, two = make_getter(100), make_getter(200)
    assert (one(7), two(7)) == (107, 207)
    lam1 = tiered.cache(key="lam1:{x}")(lambda x: ("one", x))
    lam2 = tiered.cache(key="lam2:{x}")(lambda x: ("two", x))
    assert (lam1(3), lam2(3)) == (("one", 3), ("two", 3))


def test_a_bound_method_needs_a_key(cache: Any) -> None:
    class Api:
        def get(self, item: str) -> str:
            return item

        @classmethod
        def make(cls) -> Api:
            return cls()

    with pytest.raises(TypeError, match=r"bound method.*key="):
        cache.cache(Api().get)
    with pytest.raises(TypeError, match="bound method"):
        cache.cache(Api.make)  # a classmethod bound to its class: same rule
    bound = cache.cache(key="api:{item}")(Api().get)
    assert bound("x") == "x"
    assert cache.get("api:x") == "x"


_MAIN_SCRIPT = """\
import json, sys
import tiered_cache as tiered

@tiered.cache
def settings():
    return {"from": sys.argv[1]}

print(json.dumps([settings(), settings.cache_key()]))
"""


def _run_script(path: Path, arg: str, cache_dir: Path) -> list[Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env["TIERED_CACHE_DIR"] = str(cache_dir)
    done = subprocess.run(
        [sys.executable, str(path), arg],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(path.parent),
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: list[Any] = json.loads(done.stdout)
    return result


def test_main_scripts_on_one_directory_have_their_own_keys(tmp_path: Path) -> None:
    cache_dir = tmp_path / "shared-cache"
    first, second = tmp_path / "one" / "app.py", tmp_path / "two" / "app.py"
    for script in (first, second):
        script.parent.mkdir()
        script.write_text(_MAIN_SCRIPT)
    value, key = _run_script(first, "first", cache_dir)
    assert value == {"from": "first"}
    assert key == f"__main__[{first}].settings()"
    value, key = _run_script(second, "second", cache_dir)
    assert value == {"from": "second"}  # not the first program's dict
    assert key == f"__main__[{second}].settings()"
    value, _ = _run_script(first, "third", cache_dir)  # same script: its own entry, on disk
    assert value == {"from": "first"}


def test_an_interactive_main_needs_a_key(python_subprocess: Any) -> None:
    code = """
    import tiered_cache as tiered
    try:
        @tiered.cache
        def settings():
            return 1
    except TypeError as exc:
        print("refused:", exc)

    @tiered.cache(key="settings")
    def settings():
        return 1

    print("with key:", settings.cache_key())
    """
    out = python_subprocess(textwrap.dedent(code)).stdout
    assert "refused: " in out
    assert "interactive __main__" in out
    assert "key=" in out
    assert "with key: settings" in out


# -- partials, callable instances, builtins -------------------------------------------------


def test_partial_with_a_key(cache: Any) -> None:
    calls: list[tuple[Any, ...]] = []

    def fetch(region: str, user: int, fmt: str = "json") -> str:
        calls.append((region, user, fmt))
        return f"{region}/{user}.{fmt}"

    eu = functools.partial(fetch, "eu")
    wrapped = cache.cache(key="u:{user}:{fmt}")(eu)
    assert wrapped(5) == "eu/5.json"
    assert wrapped(user=5) == "eu/5.json"
    assert wrapped.cache_key(5, "xml") == "u:5:xml"
    assert cache.get("u:5:json") == "eu/5.json"
    assert calls == [("eu", 5, "json")]
    with pytest.raises(TypeError, match="no parameter 'region'"):
        cache.cache(key="u:{region}")(eu)  # fields name the partial's own parameters
    by_name = cache.cache(key="n:{user}:{fmt}")(functools.partial(fetch, fmt="csv"))
    assert by_name("us", 1) == "us/1.csv"
    assert by_name.cache_key("us", user=2) == "n:2:csv"
    keyed = cache.cache(key=lambda user, fmt: f"c:{user}")(eu)
    assert keyed(6) == "eu/6.json"
    assert cache.get("c:6") == "eu/6.json"


def test_callable_instance_with_a_key(cache: Any) -> None:
    class Fetcher:
        def __init__(self) -> None:
            self.calls = 0

        def __call__(self, item: str, *, version: int = 1) -> str:
            self.calls += 1
            return f"{item}@{version}"

    fetcher = Fetcher()
    wrapped = cache.cache(key="f:{item}:{version}")(fetcher)
    assert wrapped("a") == wrapped("a", version=1) == "a@1"
    assert fetcher.calls == 1
    assert cache.get("f:a:1") == "a@1"
    assert wrapped.__wrapped__ is fetcher
    assert str(inspect.signature(wrapped)) == "(item: 'str', *, version: 'int' = 1) -> 'str'"


def test_builtin_without_a_signature(cache: Any) -> None:
    wrapped = cache.cache(key=lambda *args: f"max:{args}")(max)
    assert wrapped(3, 9, 4) == 9
    assert cache.get("max:(3, 9, 4)") == 9
    with pytest.raises(TypeError, match=r"signature.*key="):
        cache.cache(max)
    with pytest.raises(TypeError, match=r"signature of .*max.*callable key="):
        cache.cache(key="max:{a}")(max)
    static = cache.cache(key="static-max")(max)
    assert static([1, 2]) == 2


def test_builtin_gets_its_arguments_as_given(cache: Any) -> None:
    # int's documented defaults would change its behaviour if passed on explicitly
    # (int(3.5, base=10) is a TypeError); a builtin gets the call's arguments as given.
    wrapped = cache.cache(key=lambda *a, **k: f"int:{a}:{k}")(int)
    assert wrapped(3.5) == 3
    assert wrapped("ff", base=16) == 255


# -- defaults, controls, metadata ------------------------------------------------------------


def test_defaults_are_passed_through_not_copied(cache: Any) -> None:
    marker: list[int] = []
    made: list[int] = []

    def make_default() -> dict[str, int]:
        made.append(1)
        return {"n": 1}

    @cache.cache(key="d:{x}", persist=False)
    def f(
        x: int,
        opts: list[int] = marker,
        *,
        conf: dict[str, int] = make_default(),  # noqa: B008
    ) -> Any:
        return (opts, conf)

    opts, conf = f(1)
    assert opts is marker
    assert conf is f.__wrapped__.__kwdefaults__["conf"]  # type: ignore[attr-defined]
    assert made == [1]  # evaluated once, by the def; never again


def test_invalidate_and_refresh(make_cache: Any, fake_clock: Any) -> None:
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
    fake_clock.advance(1)
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
    assert inspect.signature(wrapped) == inspect.signature(original)
    for control, returns in (("cache_key", str), ("invalidate", bool), ("refresh", "str")):
        assert inspect.signature(getattr(wrapped, control)) == inspect.signature(original).replace(
            return_annotation=returns
        )
    assert wrapped.cache_key.__qualname__ == f"{original.__qualname__}.cache_key"


def test_bare_decorator_uses_the_default_cache() -> None:
    first = square(4)
    assert square(4) == first
    default = tiered.default_cache()
    assert default.get(square.cache_key(4)) == first
    assert default.stats()["memory_hits"] >= 1


def test_decorator_with_positional_template_and_options() -> None:
    calls: list[int] = []

    @tiered.cache("sq:{x}", ttl=5)
    def square_(x: int) -> int:
        calls.append(x)
        return x * x

    assert square_(3) == 9
    assert square_.cache_key(3) == "sq:3"
    assert tiered.default_cache().get("sq:3") == 9
    with pytest.raises(TypeError, match="once"):
        tiered.cache("a", key="b")
    with pytest.raises(TypeError, match="not callable"):
        tiered.cache(42)  # type: ignore[call-overload]


def test_methods_with_a_template_on_self(cache: Any) -> None:
    class Api:
        def __init__(self, name: str) -> None:
            self.name = name
            self.calls = 0

        @cache.cache(key="svc:{self.name}:{item}")
        def lookup(self, item: str) -> str:
            self.calls += 1
            return f"{self.name}/{item}"

    a, b = Api("a"), Api("b")
    assert a.lookup("x") == "a/x"
    assert a.lookup("x") == "a/x"
    assert a.lookup(item="x") == "a/x"
    assert b.lookup("x") == "b/x"
    assert (a.calls, b.calls) == (1, 1)
    assert Api.lookup.cache_key(a, "x") == "svc:a:x"
    assert cache.get("svc:b:x") == "b/x"


def test_static_and_class_methods(cache: Any) -> None:
    class Api:
        @staticmethod
        @cache.cache(key="static:{x}")
        def double(x: int) -> int:
            return 2 * x

        @classmethod
        @cache.cache(key="cls:{cls.__name__}:{x}")
        def named(cls, x: int) -> str:
            return f"{cls.__name__}{x}"

    assert Api.double(2) == 4
    assert Api.named(1) == "Api1"
    assert cache.get("static:2") == 4
    assert cache.get("cls:Api:1") == "Api1"


# -- ttl and options -------------------------------------------------------------------------


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


NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    ("option", "value", "error", "says"),
    [
        ("ttl", "60", TypeError, r"ttl must be None or a number of seconds >= 0 .*'60' \(str\)"),
        ("ttl", True, TypeError, r"ttl must be .* not True \(bool\)"),
        ("ttl", [60], TypeError, r"ttl must be .* \(list\)"),
        ("ttl", NAN, ValueError, r"ttl must be .*inf.*no expiry.*not nan"),
        ("ttl", -1, ValueError, r"ttl must be .*>= 0.*not -1"),
        ("ttl", -INF, ValueError, r"ttl must be .*not -inf"),
        ("stale_if_error", "x", TypeError, r"stale_if_error must be .*>= 0.*'x' \(str\)"),
        ("stale_if_error", NAN, ValueError, r"stale_if_error must be .*not nan"),
        ("stale_if_error", -0.5, ValueError, r"stale_if_error must be .*not -0.5"),
        ("stale_if_error", b"1", TypeError, r"stale_if_error must be .*\(bytes\)"),
    ],
)
@pytest.mark.parametrize("kind", ["plain", "async"])
def test_bad_options_are_refused_at_decoration(
    cache: Any, option: str, value: Any, error: type[Exception], says: str, kind: str
) -> None:
    def plain() -> int:
        return 1

    async def coroutine() -> int:
        return 1

    func = plain if kind == "plain" else coroutine
    with pytest.raises(error, match=says):
        cache.cache(key="k", **{option: value})(func)
    with pytest.raises(error, match=says):
        tiered.cache(key="k", **{option: value})(func)
    assert cache.get("k") is None  # nothing was called or stored


def test_infinite_ttl_means_no_expiry(make_cache: Any, fake_clock: Any) -> None:
    cache = make_cache(ttl=10)
    calls: list[int] = []

    @cache.cache(key="forever", ttl=INF, stale_if_error=INF)
    def forever() -> int:
        calls.append(1)
        return len(calls)

    assert forever() == 1
    fake_clock.advance(10 * 365 * 86400)
    assert forever() == 1
    assert make_cache().get("forever") == 1  # on disk too, still fresh
    assert calls == [1]


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


# -- following the default cache -------------------------------------------------------------


def test_a_function_decorated_before_use_cache_follows_the_default(
    make_cache: Any, tmp_path: Path, fake_clock: Any
) -> None:
    first = make_cache(directory=str(tmp_path / "first"))
    other = make_cache(directory=str(tmp_path / "other"))
    tiered.set_default_cache(first)
    key = square.cache_key(5)  # square was decorated at import, long before either existed
    outside = square(5)
    assert first.get(key) == outside
    with tiered.use_cache(other):
        inside = square(5)
        assert inside != outside  # a miss in `other`: the function ran again
        assert other.get(key) == inside
        assert square(5) == inside  # and then hits there
        fake_clock.advance(1)
        assert square.refresh(5) != inside  # the controls use the current default too
        assert square.invalidate(5) is True
        assert other.get(key) is None
    assert first.get(key) == outside  # untouched by the block
    assert square(5) == outside  # after it: the original default again
    square(6)
    assert first.get(square.cache_key(6)) is not None
    assert other.get(square.cache_key(6)) is None


def test_set_default_cache_reaches_functions_decorated_earlier(
    make_cache: Any, tmp_path: Path
) -> None:
    @tiered.cache(key="later:{x}")
    def later(x: int) -> tuple[int, int]:
        return x, serial()

    old = tiered.default_cache()
    value = later(1)
    assert old.get("later:1") == value
    new = make_cache(directory=str(tmp_path / "new"))
    tiered.set_default_cache(new)
    fresh = later(1)
    assert fresh != value
    assert new.get("later:1") == fresh
    assert later(1) == fresh


def test_an_explicit_cache_stays_bound_inside_use_cache(make_cache: Any, tmp_path: Path) -> None:
    mine = make_cache(directory=str(tmp_path / "mine"))
    other = make_cache(directory=str(tmp_path / "other"))

    @mine.cache(key="mine:{x}")
    def f(x: int) -> tuple[int, int]:
        return x, serial()

    value = f(1)
    with tiered.use_cache(other):
        assert f(1) == value
        f(2)
        assert f.invalidate(2) is True
    assert other.get("mine:1") is None
    assert other.get("mine:2") is None
    assert mine.get("mine:1") == value
