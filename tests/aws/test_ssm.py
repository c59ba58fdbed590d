"""tiered_cache.ssm under moto: values, batching, paths, selectors, keys, freshness, errors."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from _awshelp import Calls, bytes_under

import tiered_cache as tiered
from tiered_cache import TieredCache, _config, ssm
from tiered_cache.exceptions import (
    ArgumentTypeNotSupportedError,
    NoEntryNameError,
    NotFoundError,
    SourceError,
)


@pytest.fixture
def params(ssm_client: Any) -> Any:
    ssm_client.put_parameter(Name="/app/var", Value="v1", Type="String")
    ssm_client.put_parameter(Name="/app/list", Value="a,b,c", Type="StringList")
    ssm_client.put_parameter(Name="/app/secret", Value="s3cr3t-ssm-value", Type="SecureString")
    return ssm_client


def test_string_stringlist_and_securestring(default: Any, params: Any, calls: Calls) -> None:
    assert ssm.get_entry(parameter="/app/var") == "v1"
    assert ssm.get_entry(parameter="/app/list") == ["a", "b", "c"]
    assert ssm.get_entry(parameter="/app/secret") == "s3cr3t-ssm-value"
    assert calls.count("GetParameter") == 3
    assert all(r["WithDecryption"] is True for r in calls.requests("GetParameter"))


def test_warm_hit_makes_no_call_and_counts_a_memory_hit(
    default: Any, params: Any, calls: Calls
) -> None:
    ssm.get_entry("/app/var")
    hits = default.memory_hits
    for _ in range(5):
        assert ssm.get_entry("/app/var") == "v1"
    assert calls.count() == 1
    assert default.memory_hits == hits + 5


def test_expiry_refetches_and_sees_the_update(
    default: Any, params: Any, calls: Calls, fake_clock: Any
) -> None:
    assert ssm.get_entry("/app/var", max_age_in_seconds=60) == "v1"
    params.put_parameter(Name="/app/var", Value="v2", Type="String", Overwrite=True)
    fake_clock.advance(59.9)
    assert ssm.get_entry("/app/var", max_age_in_seconds=60) == "v1"
    assert calls.count() == 1
    fake_clock.advance(0.2)  # sub-second precision: 60.1 s old is stale
    assert ssm.get_entry("/app/var", max_age_in_seconds=60) == "v2"
    assert calls.count() == 2


def test_default_max_age_is_60_seconds(
    default: Any, params: Any, calls: Calls, fake_clock: Any
) -> None:
    ssm.get_entry("/app/var")
    fake_clock.advance(59)
    ssm.get_entry("/app/var")
    assert calls.count() == 1
    fake_clock.advance(1.5)
    ssm.get_entry("/app/var")
    assert calls.count() == 2


def test_max_age_zero_fetches_every_time_and_replaces_the_value_for_everyone(
    default: Any, params: Any, calls: Calls
) -> None:
    assert ssm.get_entry("/app/var", max_age_in_seconds=300) == "v1"
    params.put_parameter(Name="/app/var", Value="v2", Type="String", Overwrite=True)
    assert ssm.get_entry("/app/var", max_age_in_seconds=0) == "v2"
    assert ssm.get_entry("/app/var", max_age_in_seconds=0) == "v2"
    assert calls.count() == 3
    # the forced fetch replaced the cached value: the 300 s call site sees it, with no call
    assert ssm.get_entry("/app/var", max_age_in_seconds=300) == "v2"
    assert calls.count() == 3


def test_each_call_site_bounds_its_own_staleness(
    default: Any, params: Any, calls: Calls, fake_clock: Any
) -> None:
    ssm.get_entry("/app/var", max_age_in_seconds=300)
    fake_clock.advance(11)
    ssm.get_entry("/app/var", max_age_in_seconds=300)
    assert calls.count() == 1
    ssm.get_entry("/app/var", max_age_in_seconds=10)  # 11 s old is too old for this caller
    assert calls.count() == 2


def test_ttl_is_max_age_in_seconds(
    default: Any, params: Any, calls: Calls, fake_clock: Any
) -> None:
    ssm.get_entry("/app/var", ttl=5)
    fake_clock.advance(4)
    ssm.get_entry("/app/var", ttl=5)
    assert calls.count() == 1
    fake_clock.advance(2)
    ssm.get_entry("/app/var", ttl=5)
    assert calls.count() == 2
    assert ssm.get_entry("/app/var", max_age_in_seconds=5, ttl=5) == "v1"
    with pytest.raises(TypeError, match="give one of them"):
        ssm.get_entry("/app/var", max_age_in_seconds=5, ttl=6)


@pytest.mark.parametrize("bad", [-1, "60", True])
def test_bad_max_age_is_a_type_error(default: Any, bad: Any) -> None:
    with pytest.raises(TypeError, match="max_age_in_seconds"):
        ssm.get_entry("/app/var", max_age_in_seconds=bad)


def test_unknown_option_is_a_type_error(default: Any) -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        ssm.get_entry("/app/var", max_age=5)  # type: ignore[call-arg]


def test_list_gives_a_dict_by_leaf_name(default: Any, params: Any, calls: Calls) -> None:
    got = ssm.get_entry(parameter=["/app/var", "/app/list"], entry_name="cfg")
    assert got == {"var": "v1", "list": ["a", "b", "c"]}
    assert calls.count("GetParameters") == 1
    assert ssm.get_entry(parameter=["/app/var", "/app/list"], entry_name="cfg") == got
    assert calls.count() == 1


def test_list_of_25_names_is_fetched_in_batches_of_10(
    default: Any, ssm_client: Any, calls: Calls
) -> None:
    names = [f"/many/p{i:02d}" for i in range(25)]
    for i, name in enumerate(names):
        ssm_client.put_parameter(Name=name, Value=str(i), Type="String")
    got = ssm.get_entry(parameter=names, entry_name="many")
    assert got == {f"p{i:02d}": str(i) for i in range(25)}
    assert calls.count("GetParameters") == 3
    assert [len(r["Names"]) for r in calls.requests("GetParameters")] == [10, 10, 5]


def test_missing_names_in_a_list_are_all_named(
    default: Any, params: Any, calls: Calls, fake_clock: Any
) -> None:
    names = ["/app/var", "/nope/one", *[f"/fill/p{i}" for i in range(9)], "/nope/two"]
    with pytest.raises(NotFoundError) as info:
        ssm.get_entry(parameter=names, entry_name="x")
    assert "/nope/one" in str(info.value)
    assert "/nope/two" in str(info.value)
    assert "/fill/p0" in str(info.value)  # these do not exist either
    assert "/app/var" not in str(info.value).split("not found", 1)[1]


def test_leaf_name_collisions_are_a_value_error_naming_them(default: Any, calls: Calls) -> None:
    with pytest.raises(ValueError, match="get_parameters_by_path") as info:
        ssm.get_entry(parameter=["/a/x", "/b/x", "/c/y"], entry_name="cfg")
    assert "/a/x" in str(info.value)
    assert "/b/x" in str(info.value)
    assert "/c/y" not in str(info.value)
    assert calls.count() == 0


def test_same_leaf_different_paths_do_not_collide(
    default: Any, ssm_client: Any, calls: Calls
) -> None:
    ssm_client.put_parameter(Name="/a/x", Value="from-a", Type="String")
    ssm_client.put_parameter(Name="/b/x", Value="from-b", Type="String")
    assert ssm.get_entry("/a/x") == "from-a"
    assert ssm.get_entry("/b/x") == "from-b"
    assert ssm.get_entry("/a/x") == "from-a"
    assert calls.count() == 2


def test_get_parameters_by_path_is_paginated_and_keyed_by_full_name(
    default: Any, ssm_client: Any, calls: Calls
) -> None:
    for i in range(23):
        ssm_client.put_parameter(Name=f"/svc/p{i:02d}", Value=str(i), Type="String")
    ssm_client.put_parameter(Name="/svc/deep/x", Value="deep", Type="StringList")
    ssm_client.put_parameter(Name="/other/x", Value="no", Type="String")
    flat = ssm.get_parameters_by_path("/svc")
    assert flat == {f"/svc/p{i:02d}": str(i) for i in range(23)}
    assert calls.count("GetParametersByPath") == 3
    deep = ssm.get_parameters_by_path("/svc", recursive=True)
    assert deep["/svc/deep/x"] == ["deep"]
    assert len(deep) == 24
    assert calls.count("GetParametersByPath") == 6
    assert ssm.get_parameters_by_path("/svc", recursive=True) == deep
    assert ssm.get_parameters_by_path("/svc") == flat
    assert calls.count() == 6
    assert ssm.get_parameters_by_path("/empty") == {}


def test_get_parameters_by_path_validates(default: Any) -> None:
    with pytest.raises(ArgumentTypeNotSupportedError):
        ssm.get_parameters_by_path(["/a"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start with '/'"):
        ssm.get_parameters_by_path("a/b")
    with pytest.raises(TypeError, match="recursive"):
        ssm.get_parameters_by_path("/a", recursive="yes")  # type: ignore[arg-type]


def test_version_and_label_selectors_are_part_of_the_key(
    default: Any, ssm_client: Any, calls: Calls
) -> None:
    ssm_client.put_parameter(Name="/ver/p", Value="one", Type="String")
    ssm_client.put_parameter(Name="/ver/p", Value="two", Type="String", Overwrite=True)
    ssm_client.label_parameter_version(Name="/ver/p", ParameterVersion=1, Labels=["stable"])
    assert ssm.get_entry("/ver/p:1") == "one"
    assert ssm.get_entry("/ver/p") == "two"
    assert ssm.get_entry("/ver/p:stable") == "one"
    assert ssm.get_entry("/ver/p:2") == "two"
    assert calls.count() == 4


def test_decrypt_false_is_a_separate_entry(default: Any, params: Any, calls: Calls) -> None:
    ssm.get_entry("/app/secret", decrypt=False)
    assert ssm.get_entry("/app/secret") == "s3cr3t-ssm-value"
    assert [r["WithDecryption"] for r in calls.requests("GetParameter")] == [False, True]
    assert calls.count() == 2
    with pytest.raises(TypeError, match="decrypt"):
        ssm.get_entry("/app/secret", decrypt="no")  # type: ignore[typeddict-item]


def test_missing_name_is_not_found_chained_and_remembered(
    default: Any, calls: Calls, fake_clock: Any
) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(NotFoundError) as info:
        ssm.get_entry("/does/not/exist")
    assert isinstance(info.value.__cause__, ClientError)
    assert "/does/not/exist" in str(info.value)
    for _ in range(3):
        with pytest.raises(NotFoundError) as again:
            ssm.get_entry("/does/not/exist")
        assert isinstance(again.value.__cause__, ClientError)
    assert calls.count() == 1  # remembered: the service is not asked again
    fake_clock.advance(10.5)
    with pytest.raises(NotFoundError):
        ssm.get_entry("/does/not/exist")
    assert calls.count() == 2


def test_missing_name_is_remembered_no_longer_than_the_ttl(
    default: Any, ssm_client: Any, calls: Calls, fake_clock: Any
) -> None:
    with pytest.raises(NotFoundError):
        ssm.get_entry("/late/p", max_age_in_seconds=3)
    fake_clock.advance(2)
    with pytest.raises(NotFoundError):
        ssm.get_entry("/late/p", max_age_in_seconds=3)
    assert calls.count() == 1
    ssm_client.put_parameter(Name="/late/p", Value="here", Type="String")
    fake_clock.advance(1.5)
    assert ssm.get_entry("/late/p", max_age_in_seconds=3) == "here"
    assert calls.count() == 2


def test_missing_name_with_max_age_zero_is_asked_every_time(default: Any, calls: Calls) -> None:
    for _ in range(3):
        with pytest.raises(NotFoundError):
            ssm.get_entry("/nope", max_age_in_seconds=0)
    assert calls.count() == 3


def test_service_errors_are_source_errors(default: Any, params: Any, calls: Calls) -> None:
    from botocore.exceptions import ClientError

    calls.fail["GetParameter"] = (400, "ThrottlingException")
    with pytest.raises(SourceError) as info:
        ssm.get_entry("/app/var")
    assert not isinstance(info.value, NotFoundError)
    assert isinstance(info.value.__cause__, ClientError)
    assert "ThrottlingException" in str(info.value)


def test_stale_if_error_serves_the_old_value_within_its_window(
    default: Any, params: Any, calls: Calls, fake_clock: Any
) -> None:
    assert ssm.get_entry("/app/var", stale_if_error=30) == "v1"
    fake_clock.advance(70)
    calls.fail["GetParameter"] = (500, "InternalServerError")
    assert ssm.get_entry("/app/var", stale_if_error=30) == "v1"
    with pytest.raises(SourceError):
        ssm.get_entry("/app/var")  # this caller did not opt in
    fake_clock.advance(30)
    with pytest.raises(SourceError):
        ssm.get_entry("/app/var", stale_if_error=30)


def test_region_is_part_of_the_key(default: Any, calls: Calls) -> None:
    boto3.client("ssm", region_name="us-east-1").put_parameter(
        Name="/r/p", Value="east", Type="String"
    )
    boto3.client("ssm", region_name="eu-west-1").put_parameter(
        Name="/r/p", Value="west", Type="String"
    )
    assert ssm.get_entry("/r/p") == "east"
    assert ssm.get_entry("/r/p", region_name="eu-west-1") == "west"
    assert ssm.get_entry("/r/p") == "east"
    assert ssm.get_entry("/r/p", region_name="eu-west-1") == "west"
    assert calls.count("GetParameter") == 2


def test_injected_client_and_session(default: Any, calls: Calls) -> None:
    west = boto3.Session(region_name="eu-west-1").client("ssm")  # not the default session
    west.put_parameter(Name="/inj/p", Value="west", Type="String")
    calls.watch(west)
    assert ssm.get_entry("/inj/p", client=west) == "west"
    assert ssm.get_entry("/inj/p", client=west) == "west"
    assert calls.count() == 1
    session = boto3.Session(region_name="eu-west-1")
    calls.register(session.events)
    assert ssm.get_entry("/inj/p", session=session, ttl=0) == "west"
    assert calls.count() == 2


def test_string_values_persist_and_securestrings_stay_in_memory(
    default: Any, params: Any, calls: Calls, make_cache: Any
) -> None:
    assert ssm.get_entry("/app/var") == "v1"
    assert ssm.get_entry("/app/secret") == "s3cr3t-ssm-value"
    assert ssm.get_entry(["/app/secret", "/app/list"], entry_name="both")["secret"]
    assert b"s3cr3t-ssm-value" not in bytes_under(default.directory)
    # a new process on the same /tmp: the String comes from disk, the secret from SSM
    fresh = make_cache()
    tiered.set_default_cache(fresh)
    assert ssm.get_entry("/app/var") == "v1"
    assert calls.count() == 3
    assert ssm.get_entry("/app/secret") == "s3cr3t-ssm-value"
    assert calls.count() == 4


def test_persist_true_puts_a_securestring_on_disk(
    default: Any, params: Any, calls: Calls, make_cache: Any
) -> None:
    ssm.get_entry("/app/secret", persist=True)
    tiered.set_default_cache(make_cache())
    assert ssm.get_entry("/app/secret", persist=True) == "s3cr3t-ssm-value"
    assert calls.count() == 1


def test_persist_false_keeps_a_string_off_disk(
    default: Any, params: Any, calls: Calls, make_cache: Any
) -> None:
    ssm.get_entry("/app/var", persist=False)
    tiered.set_default_cache(make_cache())
    ssm.get_entry("/app/var", persist=False)
    assert calls.count() == 2


@pytest.mark.parametrize(
    ("parameter", "entry_name", "error"),
    [
        (["/a", "/b"], False, NoEntryNameError),
        ({"a": 1}, None, NoEntryNameError),
        (5, "", NoEntryNameError),
        (3.5, False, ArgumentTypeNotSupportedError),  # lambda-cache: not int/list/dict
        (("/a", "/b"), False, ArgumentTypeNotSupportedError),
        ({"a": 1}, "cfg", ArgumentTypeNotSupportedError),
        (5, "n", ArgumentTypeNotSupportedError),
        (["/a", 2], "cfg", ArgumentTypeNotSupportedError),
        ("/a", 7, ArgumentTypeNotSupportedError),
    ],
)
def test_argument_errors_follow_lambda_cache_order(
    default: Any, calls: Calls, parameter: Any, entry_name: Any, error: type[Exception]
) -> None:
    with pytest.raises(error):
        ssm.get_entry(parameter, entry_name=entry_name)
    assert calls.count() == 0
    assert issubclass(NoEntryNameError, ValueError)
    assert issubclass(ArgumentTypeNotSupportedError, TypeError)


def test_empty_names_are_value_errors(default: Any) -> None:
    with pytest.raises(ValueError, match="empty"):
        ssm.get_entry("")
    with pytest.raises(ValueError, match="empty"):
        ssm.get_entry([], entry_name="x")
    with pytest.raises(ValueError, match="empty"):
        ssm.get_entry(["/a", ""], entry_name="x")


def test_duplicate_names_in_a_list_are_fetched_once(
    default: Any, params: Any, calls: Calls
) -> None:
    assert ssm.get_entry(["/app/var", "/app/var"], entry_name="x") == {"var": "v1"}
    assert calls.requests("GetParameters")[0]["Names"] == ["/app/var"]


def test_a_new_default_cache_is_picked_up(
    default: Any, params: Any, calls: Calls, make_cache: Any
) -> None:
    ssm.get_entry("/app/var")
    other = make_cache(disk=False)
    tiered.set_default_cache(other)
    ssm.get_entry("/app/var")
    assert calls.count() == 2
    assert other.stats()["loads"] == 1


def test_works_with_the_environment_default_cache(params: Any, calls: Calls) -> None:
    assert _config._current is None
    assert ssm.get_entry("/app/var") == "v1"
    assert isinstance(_config._current, TieredCache)
    assert ssm.get_entry("/app/var") == "v1"
    assert calls.count() == 1
