"""The names users import: modules are modules, renamed names keep a warning alias."""

from __future__ import annotations

import os
import subprocess
import sys
import types
from typing import Any, List

import pytest

import kubesync
import kubesync.runtime
from kubesync import errors
from kubesync.core import params
from kubesync.runtime import conditions, finalize, reflect, wait, watch
from kubesync.runtime.store import StoreWriter
from kubesync.runtime.watcher import InitDone, Watcher
from tests.unit.runtime_fakes import FakeApi


@pytest.mark.parametrize("name", ["watcher", "reflector", "finalizer", "conditions"])
def test_runtime_submodules_are_modules_under_their_own_name(name: str) -> None:
    module = __import__(f"kubesync.runtime.{name}", fromlist=["_"])
    assert isinstance(module, types.ModuleType)
    assert getattr(kubesync.runtime, name) is module


def test_the_runtime_functions_are_verbs_next_to_their_modules() -> None:
    assert (watch.__module__, reflect.__module__, finalize.__module__) == (
        "kubesync.runtime.watcher", "kubesync.runtime.reflector", "kubesync.runtime.finalizer")


def test_calling_the_watcher_module_warns_and_builds_a_watcher() -> None:
    with pytest.warns(DeprecationWarning, match="kubesync.runtime.watch"):
        w = kubesync.runtime.watcher(FakeApi(), queue_size=3)  # type: ignore[operator]
    assert isinstance(w, Watcher)


def test_calling_the_reflector_module_warns_and_reflects() -> None:
    writer: StoreWriter[Any] = StoreWriter()
    with pytest.warns(DeprecationWarning, match="kubesync.runtime.reflect"):
        events: List[Any] = list(
            kubesync.runtime.reflector(writer, iter([InitDone()])))  # type: ignore[operator]
    assert events == [InitDone()] and writer.store.is_ready


@pytest.mark.parametrize(
    ("module", "old", "new"),
    [("watcher", "watcher", watch), ("reflector", "reflector", reflect),
     ("finalizer", "finalizer", finalize)],
)
def test_the_old_function_names_in_their_modules_warn(module: str, old: str, new: Any) -> None:
    mod = getattr(kubesync.runtime, module)
    with pytest.warns(DeprecationWarning, match=new.__name__):
        assert getattr(mod, old) is new
    with pytest.raises(AttributeError):
        mod.no_such_name  # noqa: B018


def test_conditions_are_one_namespace_reachable_from_kubesync() -> None:
    assert kubesync.conditions is conditions
    assert conditions.is_pod_running()(None) is False


@pytest.mark.parametrize(
    "name",
    ["is_crd_established", "is_deleted", "is_deployment_rolled_out", "is_job_completed",
     "is_pod_running"],
)
def test_the_old_condition_names_warn_and_are_the_same_functions(name: str) -> None:
    for old_home in (kubesync.runtime, wait):
        with pytest.warns(DeprecationWarning, match=f"conditions.{name}"):
            assert getattr(old_home, name) is getattr(conditions, name)


def test_wait_still_serves_its_old_helpers_with_a_warning() -> None:
    for name in ("find_condition", "is_crd_established_or_refused"):
        with pytest.warns(DeprecationWarning):
            assert getattr(wait, name) is getattr(conditions, name)


@pytest.mark.parametrize(
    "name", ["CustomResource", "UsageError", "BadRequest", "TooManyRequests", "RequestTimeout",
             "LabelQuery"],
)
def test_what_users_catch_and_write_is_exported_from_kubesync(name: str) -> None:
    assert name in kubesync.__all__ and getattr(kubesync, name) is not None


def test_the_label_selector_builder_has_its_own_name_and_the_old_one_warns() -> None:
    assert str(kubesync.LabelQuery(app="web").exists("tier")) == "app=web,tier"
    with pytest.warns(DeprecationWarning, match="LabelQuery"):
        assert kubesync.LabelSelector is kubesync.LabelQuery  # type: ignore[misc]
    with pytest.warns(DeprecationWarning, match="LabelQuery"):
        assert params.LabelSelector is kubesync.LabelQuery
    assert "LabelSelector" not in kubesync.__all__


def test_no_public_name_shadows_a_builtin_on_star_import() -> None:
    import builtins

    for module in (kubesync, kubesync.runtime, errors):
        assert not set(module.__all__) & set(dir(builtins)), module.__name__


def test_import_kubesync_leaves_the_runtime_unloaded_until_conditions_is_used() -> None:
    code = ("import sys, kubesync; a = 'kubesync.runtime' in sys.modules; "
            "kubesync.conditions; print(a, 'kubesync.runtime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["False", "True"]


def test_a_client_from_a_kubeconfig_imports_no_websocket_or_subprocess_until_used(
    tmp_path: Any,
) -> None:
    # Both cost import time in every script; only exec/attach/port-forward and exec
    # credential plugins need them.
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n")
    code = ("import sys, kubesync; kubesync.Client.from_config(); "
            "print(sorted(m for m in ('websocket', 'subprocess') if m in sys.modules)); "
            "import kubesync.client.wstransport as w; w.websocket_error(OSError('x'), 'u'); "
            "print('websocket' in sys.modules)")
    env = dict(os.environ, KUBECONFIG=str(config))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout.split("\n")
    assert out[:2] == ["[]", "True"]


@pytest.mark.parametrize("module, function", [("loader", "load"), ("dumper", "dump"),
                                              ("applier", "apply")])
def test_manifests_functions_do_not_hide_their_modules(module: str, function: str) -> None:
    import importlib

    import kubesync.manifests as manifests

    mod = importlib.import_module(f"kubesync.manifests.{module}")
    assert isinstance(mod, types.ModuleType)
    assert getattr(manifests, module) is mod
    assert getattr(manifests, function) is getattr(mod, function)
    assert callable(getattr(manifests, function))
    assert not isinstance(getattr(manifests, function), types.ModuleType)


@pytest.mark.parametrize("name, home", [("StoreStopped", "kubesync.runtime.store"),
                                        ("PredicateFilter", "kubesync.runtime.watcher")])
def test_what_runtime_users_catch_and_build_is_exported(name: str, home: str) -> None:
    import importlib

    assert name in kubesync.runtime.__all__
    assert getattr(kubesync.runtime, name) is getattr(importlib.import_module(home), name)


def test_client_from_config_given_a_path_says_what_it_takes() -> None:
    with pytest.raises(TypeError, match=r"takes a Config, not str.*Config.from_kubeconfig"):
        kubesync.Client.from_config("~/.kube/config")  # type: ignore[arg-type]
