"""transform= on SSM, Secrets Manager and AppConfig ("json", "binary", "auto", None), and the
promise that a value which does not parse leaks nothing of itself through the exception."""

from __future__ import annotations

import base64
import json
import types
from typing import Any

import pytest
from _awshelp import Calls

from tiered_cache import secrets_manager, ssm

SECRET = "s3cr3t-do-not-leak-7f2a"


@pytest.fixture
def params(ssm_client: Any) -> Any:
    ssm_client.put_parameter(Name="/t/cfg.json", Value='{"a": [1, 2]}', Type="String")
    ssm_client.put_parameter(Name="/t/key.binary", Value="aGVsbG8=", Type="String")
    ssm_client.put_parameter(Name="/t/plain", Value='{"a": 1}', Type="String")
    ssm_client.put_parameter(Name="/t/list", Value="x,y", Type="StringList")
    ssm_client.put_parameter(Name="/t/bad.json", Value=SECRET, Type="SecureString")
    return ssm_client


def test_ssm_transforms(default: Any, params: Any, calls: Calls) -> None:
    assert ssm.get_entry("/t/cfg.json", transform="json") == {"a": [1, 2]}
    assert ssm.get_entry("/t/key.binary", transform="binary") == b"hello"
    assert ssm.get_entry("/t/plain", transform="json") == {"a": 1}
    assert ssm.get_entry("/t/plain") == '{"a": 1}'  # transform is part of the key
    assert calls.count("GetParameter") == 4
    assert ssm.get_entry("/t/cfg.json", transform="auto") == {"a": [1, 2]}
    assert ssm.get_entry("/t/key.binary", transform="auto") == b"hello"
    assert ssm.get_entry("/t/plain", transform="auto") == '{"a": 1}'  # no suffix: as it is
    assert ssm.get_entry("/t/list", transform="auto") == ["x", "y"]


def test_ssm_lists_and_paths_transform_each_value(default: Any, params: Any) -> None:
    names = ["/t/cfg.json", "/t/key.binary", "/t/plain"]
    assert ssm.get_entry(names, entry_name="x", transform="auto") == {
        "cfg.json": {"a": [1, 2]},
        "key.binary": b"hello",
        "plain": '{"a": 1}',
    }
    params.put_parameter(Name="/p/one.json", Value="[1]", Type="String")
    params.put_parameter(Name="/p/two", Value="2", Type="String")
    assert ssm.get_parameters_by_path("/p", transform="auto") == {"/p/one.json": [1], "/p/two": "2"}
    assert ssm.get_parameters_by_path("/p", transform="json") == {"/p/one.json": [1], "/p/two": 2}


def test_a_selector_does_not_hide_the_suffix(default: Any, params: Any) -> None:
    assert ssm.get_entry("/t/cfg.json:1", transform="auto") == {"a": [1, 2]}


def test_a_stringlist_cannot_be_parsed(default: Any, params: Any) -> None:
    with pytest.raises(ValueError, match="is a list"):
        ssm.get_entry("/t/list", transform="json")


def test_unknown_transform_is_refused_before_any_call(default: Any, calls: Calls) -> None:
    for bad in ("yaml", "JSON", 1):
        with pytest.raises(ValueError, match="'json', 'binary', 'auto' or None"):
            ssm.get_entry("/t/plain", transform=bad)  # type: ignore[typeddict-item]
        with pytest.raises(ValueError, match="transform"):
            secrets_manager.get_entry("prod/x", transform=bad)  # type: ignore[typeddict-item]
    assert calls.count() == 0


def test_secrets_binary_and_auto(default: Any, secrets_client: Any) -> None:
    encoded = base64.b64encode(b"\x00\xffkey").decode()
    secrets_client.create_secret(Name="app/key.binary", SecretString=encoded)
    secrets_client.create_secret(Name="app/db.json", SecretString=json.dumps({"u": "x"}))
    secrets_client.create_secret(Name="app/plain", SecretString="as-is")
    assert secrets_manager.get_entry("app/key.binary", transform="binary") == b"\x00\xffkey"
    assert secrets_manager.get_entry("app/key.binary", transform="auto") == b"\x00\xffkey"
    assert secrets_manager.get_entry("app/db.json", transform="auto") == {"u": "x"}
    assert secrets_manager.get_entry("app/plain", transform="auto") == "as-is"


# -- nothing of the value leaks through the exception -------------------------------------------


def _reachable(root: BaseException) -> list[Any]:
    """Everything an error reporter could print from ``root``: the exception chain (cause and
    context), each exception's args, attributes and notes, the locals of the frame that raised
    it, and everything inside containers among them (bounded)."""
    seen: set[int] = set()
    found: list[Any] = []
    todo: list[Any] = [root]
    while todo and len(found) < 10_000:
        item = todo.pop()
        if id(item) in seen or item is None:
            continue
        seen.add(id(item))
        found.append(item)
        if isinstance(item, BaseException):
            todo += [item.__cause__, item.__context__, *item.args]
            todo += list(getattr(item, "__dict__", {}).values())
            todo += list(getattr(item, "__notes__", []))
            for name in ("doc", "object", "msg", "reason"):  # JSONDecodeError, UnicodeError
                todo.append(getattr(item, name, None))
            tb = item.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            if tb is not None:  # the frame that raised it
                todo += list(tb.tb_frame.f_locals.values())
        elif isinstance(item, dict):
            todo += list(item.keys()) + list(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            todo += list(item)
    return found


def _leaks(error: BaseException, secret: str) -> list[str]:
    needles = (secret, secret.encode(), secret[:12], secret[-12:])
    leaks = []
    for item in _reachable(error):
        texts = [item] if isinstance(item, (str, bytes)) else [repr(item), str(item)]
        for text in texts:
            if any(isinstance(text, type(n)) and n in text for n in needles):  # type: ignore[operator]
                leaks.append(f"{type(item).__name__}: {text[:80]!r}")
    return leaks


@pytest.mark.parametrize("how", ["json", "binary", "auto"])
def test_a_secret_that_does_not_parse_leaks_nothing(
    default: Any, secrets_client: Any, how: str
) -> None:
    name = "leak/db.json" if how == "auto" else "leak/db"
    secrets_client.create_secret(Name=name, SecretString=f"{{not json or base64 {SECRET}")
    with pytest.raises(ValueError, match=r"not valid (JSON|base64)") as info:
        secrets_manager.get_entry(name, transform=how)  # type: ignore[typeddict-item]
    error = info.value
    assert error.__cause__ is None
    assert error.__context__ is None
    assert name in str(error)
    assert _leaks(error, SECRET) == []


def test_a_binary_secret_that_is_not_utf8_json_leaks_nothing(
    default: Any, secrets_client: Any
) -> None:
    secrets_client.create_secret(Name="leak/bin", SecretBinary=b"\xff" + SECRET.encode())
    with pytest.raises(ValueError, match="not UTF-8") as info:
        secrets_manager.get_entry("leak/bin", transform="json")
    assert info.value.__context__ is None
    assert _leaks(info.value, SECRET) == []


def test_a_securestring_that_does_not_parse_leaks_nothing(default: Any, params: Any) -> None:
    with pytest.raises(ValueError, match="not valid JSON") as info:
        ssm.get_entry("/t/bad.json", transform="auto")
    assert info.value.__context__ is None
    assert _leaks(info.value, SECRET) == []


def test_the_leak_walk_finds_a_leak() -> None:
    """The walk above can fail: a JSONDecodeError as context carries the whole document."""

    def wrapped() -> None:
        try:
            json.loads(SECRET)
        except ValueError:
            raise ValueError("wrapped") from None  # from None keeps __context__

    with pytest.raises(ValueError, match="wrapped") as info:
        wrapped()
    assert info.value.__context__ is not None
    assert _leaks(info.value, SECRET)
    frame_holder = types.SimpleNamespace(value=SECRET)
    assert _leaks(ValueError(frame_holder), SECRET)
