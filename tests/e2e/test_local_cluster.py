"""The test harness itself: LocalCluster against the real binaries."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
import requests

from kubesync.testing import LocalCluster
from kubesync.testing.cluster import hostres, sweep_stale_folders
from tests.helpers import eventually

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


@pytest.fixture
def cluster_args(pytestconfig: pytest.Config) -> Dict[str, Any]:
    """The version and node the suite runs with, for tests that start clusters of their own."""
    return {"version": pytestconfig.getoption("kube_version"),
            "node": bool(pytestconfig.getoption("kube_node"))}


def test_stop_leaves_no_process_and_no_folder(cluster_args: Dict[str, Any]) -> None:
    before = _host_state()
    cluster = LocalCluster(controller_manager=True, **cluster_args)
    cluster.start()
    pids = cluster.pids()
    folder = cluster.dir
    assert folder is not None and folder.is_dir()
    wanted = {"etcd", "kube-apiserver", "kube-controller-manager"}
    node = cluster._node
    if cluster_args["node"]:
        wanted |= {"kube-scheduler", "node"}
        assert node is not None
        init = node._init_pid()
        assert init is not None
        # nodeinit, containerd and the kubelet at least.
        node_pids = _node_processes(init, node.cgroup_root)
        assert len(node_pids) >= 3, node_pids
        assert node.bridge in _links()
    else:
        node_pids = []
    assert set(pids) == wanted
    assert all(_alive(p) for p in pids.values())
    cluster.stop()
    assert not folder.exists()
    assert not any(_alive(p) for p in [*pids.values(), *node_pids])
    assert _host_state() == before


def test_stop_runs_when_the_body_of_the_with_block_fails(cluster_args: Dict[str, Any]) -> None:
    with pytest.raises(RuntimeError, match="test body failed"), LocalCluster(
        controller_manager=False, version=cluster_args["version"], node=False
    ) as cluster:
        pids = cluster.pids()
        folder = cluster.dir
        raise RuntimeError("test body failed")
    assert folder is not None and not folder.exists()
    assert not any(_alive(p) for p in pids.values())


def test_a_node_needs_the_controller_manager_and_versions_are_checked() -> None:
    with pytest.raises(ValueError, match="needs the controller manager"):
        LocalCluster(controller_manager=False, node=True)
    with pytest.raises(ValueError, match=r"'1\.37' or '1\.20', not 'latest'"):
        LocalCluster(version="latest")


_KILLED_CHILD = """
import json, sys
from kubesync import Api, Client
from kubesync.config import Config
from kubesync.models.core_v1 import Container, Pod, PodSpec
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.runtime.conditions import is_pod_running
from kubesync.runtime.wait import await_condition
from kubesync.testing import TEST_IMAGE, LocalCluster
from tests.helpers import eventually, served

cluster = LocalCluster(base_dir=sys.argv[1], version=sys.argv[2]).start()
client = Client(Config.from_kubeconfig(cluster.kubeconfig_path))
eventually(lambda: served(client, "/api/v1/namespaces/default/serviceaccounts/default"),
           30, "default SA")
pods = Api(client, Pod, namespace="default")
pods.create(Pod(metadata=ObjectMeta(name="doomed"), spec=PodSpec(containers=[
    Container(name="main", image=TEST_IMAGE, command=["sleep", "3600"])])))
await_condition(pods, "doomed", is_pod_running(), timeout=90)
node = cluster._node
print(json.dumps({"dir": str(cluster.dir), "bridge": node.bridge,
                  "cgroup_root": node.cgroup_root, "unshare": node.proc.popen.pid,
                  "init": node._init_pid()}), flush=True)
sys.stdin.read()
"""


def _pid_ns(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


def _node_processes(init_pid: int, cgroup_root: str) -> List[int]:
    """Every process of the node: in its PID namespace, or in its cgroups (containers)."""
    ns = _pid_ns(init_pid)
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and ns and _pid_ns(int(entry)) == ns:
            found.add(int(entry))
    for dirpath, _dirs, files in os.walk(f"/sys/fs/cgroup/pids{cgroup_root}"):
        if "cgroup.procs" in files:
            with open(os.path.join(dirpath, "cgroup.procs")) as f:
                found.update(int(line) for line in f if line.strip())
    return sorted(found)


def _any_process_in(ns: str) -> bool:
    return any(entry.isdigit() and _pid_ns(int(entry)) == ns for entry in os.listdir("/proc"))


def _links() -> List[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    return [line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()]


def _ports_of(bridge: str) -> List[str]:
    """The host ends of the pods' veth pairs on ``bridge``."""
    out = subprocess.run(["ip", "-o", "link", "show", "master", bridge],
                         capture_output=True, text=True, check=False)
    return [line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()]


def _host_state() -> Dict[str, Any]:
    """What a node could change on the machine, outside its folder."""
    sysctls = {}
    for name in hostres.SYSCTLS:
        with open("/proc/sys/" + name.replace(".", "/")) as f:
            sysctls[name] = f.read().strip()
    with open("/proc/self/mountinfo") as f:
        mounts = sorted(line.split(" - ")[0].split(" ", 4)[4] for line in f)
    tables = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False)
    return {
        # Other clusters' pods come and go (their veths): each test checks its own ports.
        "links": sorted(name for name in _links() if not name.startswith("veth")),
        "mounts": mounts,
        "sysctls": sysctls,
        "iptables": [line for line in tables.stdout.splitlines()
                     if line and not line.startswith("#")],
        "cgroups": sorted(glob.glob("/sys/fs/cgroup/*/kubesync-*")),
        "paths": {p: os.path.exists(p) for p in ("/var/log/containers", "/opt/containerd",
                                                  "/usr/libexec/kubernetes", "/etc/cni")},
    }


@pytest.mark.kube_node
def test_a_killed_run_leaves_nothing_behind(cluster_args: Dict[str, Any]) -> None:
    before = _host_state()
    base = tempfile.mkdtemp(prefix="kubesync-killed-", dir="/dev/shm")
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_CHILD, base, cluster_args["version"]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(Path(__file__).parents[2]),
        env=dict(os.environ, PYTHONPATH=str(Path(__file__).parents[2])),
    )
    try:
        assert child.stdout is not None
        info = json.loads(child.stdout.readline() or "{}")
        assert info, f"the child cluster did not start (exit {child.wait(60)})"
        ns = _pid_ns(info["init"])
        procs = _node_processes(info["init"], info["cgroup_root"])
        # nodeinit, containerd, the kubelet, a shim, pause and the pod's sleep at least.
        assert len(procs) >= 6, procs
        assert info["bridge"] in _links()
        ports = _ports_of(info["bridge"])
        assert len(ports) == 1, ports  # the running pod's
        child.kill()  # no clean-up code of ours runs in the child
        child.wait(30)
        eventually(lambda: not _any_process_in(ns), 60, "the node's PID namespace empty")
        assert not any(_alive(p) for p in procs)
        eventually(lambda: info["bridge"] not in _links(), 30, "the bridge gone")
        assert not set(ports) & set(_links())
        # Sysctls put back, no mount, link, cgroup, rule or file of the node's on the
        # machine; the folder stays until the next start sweeps it.
        assert _host_state() == before
        assert sweep_stale_folders(base) == [info["dir"]]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        shutil.rmtree(base, ignore_errors=True)
