import pytest

from rlhf.errors import RegistryError, did_you_mean
from rlhf.registry import Registry


def make() -> Registry:
    reg: Registry = Registry("widget")
    reg.register("json.dumps", "json:dumps", "serialise")
    reg.register("path.join", "os.path:join", "join paths")
    return reg


def test_lazy_resolution_and_listing():
    reg = make()
    assert reg.names() == ["json.dumps", "path.join"]
    assert [e.name for e in reg] == ["json.dumps", "path.join"]
    import json
    import os.path

    assert reg.get("json.dumps") is json.dumps
    assert reg.get("path.join") is os.path.join
    # a module:attr path that is not registered works too
    assert reg.get("os.path:basename") is os.path.basename


def test_duplicate_name_is_an_error():
    reg = make()
    with pytest.raises(ValueError, match="already registered"):
        reg.register("json.dumps", "json:loads")


def test_unknown_name_suggests_nearest():
    reg = make()
    with pytest.raises(RegistryError) as info:
        reg.get("json.dump")
    assert "unknown widget 'json.dump'" in str(info.value)
    assert "did you mean 'json.dumps'" in str(info.value)


def test_bad_targets_name_the_component():
    reg = make()
    with pytest.raises(RegistryError, match="module 'no_such_mod' not found"):
        reg.get("no_such_mod:thing")
    with pytest.raises(RegistryError, match="has no attribute 'nope'"):
        reg.get("json:nope")
    reg.register("broken", "json:missing_attr")
    with pytest.raises(RegistryError, match="widget 'broken'"):
        reg.get("broken")


def test_did_you_mean_lists_names_when_nothing_is_close():
    assert did_you_mean("zzzz", ["alpha", "beta"]) == "valid names: alpha, beta"
