"""Authentication against the real local cluster, with the REQUESTS_CA_BUNDLE trap armed."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict

import certifi
import pytest
import yaml

from kubesync import Client, Config, errors

pytestmark = pytest.mark.e2e

PLUGIN = Path(__file__).resolve().parent.parent / "fixtures" / "exec_plugin.py"
UNRELATED_BUNDLE = next(
    (p for p in ("/etc/ssl/certs/ca-certificates.crt",) if os.path.exists(p)), certifi.where()
)


@pytest.fixture(autouse=True)
def unrelated_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests would let these replace the cluster's CA; the client must not."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", UNRELATED_BUNDLE)
    monkeypatch.setenv("CURL_CA_BUNDLE", UNRELATED_BUNDLE)


@pytest.fixture
def kubeconfig(kube_cluster: Any) -> Dict[str, Any]:
    with open(kube_cluster.kubeconfig_path) as f:
        doc: Dict[str, Any] = yaml.safe_load(f)
    return doc


def user_entry(doc: Dict[str, Any], name: str) -> Dict[str, Any]:
    entry: Dict[str, Any] = next(u for u in doc["users"] if u["name"] == name)["user"]
    return entry


def write_variant(doc: Dict[str, Any], folder: Path, user: Dict[str, Any]) -> str:
    """A copy of the cluster's kubeconfig whose ``token`` user is replaced by ``user``."""
    user_entry(doc, "token").clear()
    user_entry(doc, "token").update(user)
    path = folder / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.parametrize("context", ["admin", "token"])
def test_cert_and_token_users_reach_the_cluster(kube_cluster: Any, context: str) -> None:
    config = Config.from_kubeconfig(kube_cluster.kubeconfig_path, context=context)
    with Client(config) as client:
        assert client.request("GET", "/version")["gitVersion"].startswith("v")
        names = [
            n["metadata"]["name"] for n in client.request("GET", "/api/v1/namespaces")["items"]
        ]
        assert "default" in names


def test_a_user_without_rbac_bindings_is_forbidden(kube_cluster: Any) -> None:
    config = Config.from_kubeconfig(kube_cluster.kubeconfig_path, context="nobody")
    with Client(config) as client, pytest.raises(errors.Forbidden) as info:
        client.request("GET", "/api/v1/namespaces")
    assert info.value.code == 403 and info.value.reason == "Forbidden"


def test_a_wrong_token_is_unauthorized(kubeconfig: Dict[str, Any], tmp_path: Path) -> None:
    path = write_variant(kubeconfig, tmp_path, {"token": "not-the-token"})
    with Client(Config.from_kubeconfig(path, context="token")) as client:
        with pytest.raises(errors.Unauthorized) as info:
            client.request("GET", "/api/v1/namespaces")
    assert info.value.code == 401
    assert "not-the-token" not in str(info.value)


def test_token_file_user(kubeconfig: Dict[str, Any], tmp_path: Path) -> None:
    token = user_entry(kubeconfig, "token")["token"]
    (tmp_path / "token").write_text(token)
    path = write_variant(kubeconfig, tmp_path, {"tokenFile": "token"})  # relative to the file
    with Client(Config.from_kubeconfig(path, context="token")) as client:
        assert client.request("GET", "/api/v1/namespaces")["kind"] == "NamespaceList"


def test_exec_plugin_is_rerun_after_the_server_rejects_its_token(
    kubeconfig: Dict[str, Any], tmp_path: Path
) -> None:
    token = user_entry(kubeconfig, "token")["token"]
    runs = tmp_path / "runs"
    exec_section = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": sys.executable,
        "args": [str(PLUGIN)],
        "interactiveMode": "Never",
        "env": [
            {"name": "PLUGIN_TOKENS", "value": f"stale-token,{token}"},
            {"name": "PLUGIN_COUNT_FILE", "value": str(runs)},
        ],
    }
    path = write_variant(kubeconfig, tmp_path, {"exec": exec_section})
    with Client(Config.from_kubeconfig(path, context="token")) as client:
        assert client.request("GET", "/api/v1/namespaces")["kind"] == "NamespaceList"
        assert client.request("GET", "/api/v1/namespaces")["kind"] == "NamespaceList"
    assert len(runs.read_text().splitlines()) == 2  # the stale token, then the good one
