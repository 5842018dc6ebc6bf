"""The test harness itself: LocalCluster against the real binaries."""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Iterator

import pytest
import requests

from kubesync.testing import LocalCluster

pytestmark = pytest.mark.e2e


def _session_for(kubeconfig_path: str, context: str) -> requests.Session:
    """A plain requests session for one context of a kubeconfig (the harness writes JSON)."""
    with open(kubeconfig_path) as f:
        cfg = json.load(f)
    ctx = next(c["context"] for c in cfg["contexts"] if c["name"] == context)
    cluster = next(c["cluster"] for c in cfg["clusters"] if c["name"] == ctx["cluster"])
    user = next(u["user"] for u in cfg["users"] if u["name"] == ctx["user"])
    s = requests.Session()
    s.trust_env = False  # REQUESTS_CA_BUNDLE is set on our machines and would win
    s.verify = cluster["certificate-authority"]
    if "token" in user:
        s.headers["Authorization"] = f"Bearer {user['token']}"
    else:
        s.cert = (user["client-certificate"], user["client-key"])
    s.base_url = cluster["server"]  # type: ignore[attr-defined]
    return s


@pytest.mark.parametrize("context", ["admin", "token", "nobody"])
def test_every_user_in_the_kubeconfig_reaches_version(kube_cluster: Any, context: str) -> None:
    s = _session_for(kube_cluster.kubeconfig_path, context)
    r = s.get(f"{s.base_url}/version", timeout=10)  # type: ignore[attr-defined]
    assert r.status_code == 200
    assert r.json()["major"] == "1"


def test_rbac_is_on_for_the_user_without_bindings(kube_cluster: Any) -> None:
    ok = _session_for(kube_cluster.kubeconfig_path, "token")
    nobody = _session_for(kube_cluster.kubeconfig_path, "nobody")
    url = f"{ok.base_url}/api/v1/namespaces"  # type: ignore[attr-defined]
    assert ok.get(url, timeout=10).status_code == 200
    assert nobody.get(url, timeout=10).status_code == 403


@pytest.fixture
def admin(kube_local_cluster: LocalCluster) -> Iterator[requests.Session]:
    s = _session_for(kube_local_cluster.kubeconfig_path, "admin")
    yield s
    s.close()


def _cm_url(s: requests.Session, name: str = "") -> str:
    base = f"{s.base_url}/api/v1/namespaces/default/configmaps"  # type: ignore[attr-defined]
    return f"{base}/{name}" if name else base


def _create_cm(s: requests.Session, name: str) -> Dict[str, Any]:
    r = s.post(_cm_url(s), json={"metadata": {"name": name}, "data": {"k": "v"}}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def test_restart_apiserver_keeps_data_port_and_credentials(
    kube_local_cluster: LocalCluster, admin: requests.Session
) -> None:
    created = _create_cm(admin, "survives-restart")
    port = kube_local_cluster.port
    kube_local_cluster.restart_apiserver()
    assert kube_local_cluster.port == port
    r = admin.get(_cm_url(admin, "survives-restart"), timeout=10)
    assert r.status_code == 200
    assert r.json()["metadata"]["uid"] == created["metadata"]["uid"]
    admin.delete(_cm_url(admin, "survives-restart"), timeout=10)


def test_compact_makes_an_old_resource_version_gone(
    kube_local_cluster: LocalCluster, admin: requests.Session
) -> None:
    first = _create_cm(admin, "before-compaction")
    old_rv = first["metadata"]["resourceVersion"]
    for i in range(3):
        r = admin.patch(
            _cm_url(admin, "before-compaction"),
            data=json.dumps({"data": {"k": str(i)}}),
            headers={"Content-Type": "application/merge-patch+json"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
    revision = kube_local_cluster.compact()
    assert revision > int(old_rv)
    r = admin.get(
        _cm_url(admin),
        params={"watch": "1", "resourceVersion": old_rv, "timeoutSeconds": "5"},
        timeout=30,
    )
    # A watch answers 200 and reports the expiry as an ERROR event.
    event = json.loads(r.text.splitlines()[0])
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410
    admin.delete(_cm_url(admin, "before-compaction"), timeout=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone once reaped, which stop() does.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def test_stop_leaves_no_process_and_no_folder() -> None:
    cluster = LocalCluster(controller_manager=True)
    cluster.start()
    pids = cluster.pids()
    folder = cluster.dir
    assert folder is not None and folder.is_dir()
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager"}
    assert all(_alive(p) for p in pids.values())
    cluster.stop()
    assert not folder.exists()
    assert not any(_alive(p) for p in pids.values())


def test_stop_runs_when_the_body_of_the_with_block_fails() -> None:
    with pytest.raises(RuntimeError, match="test body failed"), LocalCluster(
        controller_manager=False
    ) as cluster:
        pids = cluster.pids()
        folder = cluster.dir
        raise RuntimeError("test body failed")
    assert folder is not None and not folder.exists()
    assert not any(_alive(p) for p in pids.values())
