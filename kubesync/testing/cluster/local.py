"""LocalCluster: a real Kubernetes control plane on loopback, with one real node.

For tests. etcd, kube-apiserver, kube-controller-manager and (with a node) kube-scheduler
and a kubelet on containerd. Everything lives in one private temp folder (PKI, etcd data,
logs, the kubeconfig, the node's state); ``stop()`` ends every process and removes the
folder. Child processes get a signal from the kernel if the process that started them
dies (Linux ``PR_SET_PDEATHSIG``), so even a killed test run leaves no server behind; what
a killed run leaves (its folder, the node's bridge and cgroups) the next start removes.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Tuple, Type

import requests
import urllib3

from kubesync.core import forkgate
from kubesync.errors import KubeError
from kubesync.testing.assets import (
    BINARIES,
    NEWEST,
    NODE_K8S_BINARIES,
    OLDEST,
    MissingBinaries,
    NodeAssets,
    find_binaries,
    find_node_assets,
)
from kubesync.testing.cluster.node import NODE_NAME, Node, check_can_run
from kubesync.testing.cluster.procs import Proc, free_port
from kubesync.testing.cluster.sweep import OWNER_LOCK, PREFIX, sweep_stale_folders
from kubesync.testing.pki import Pki, make_pki

log = logging.getLogger("kubesync.testing")

#: How long a component may take to become ready. A cold apiserver on 2 cores needs ~10 s.
START_TIMEOUT = 120.0
#: How long the node may take to register and turn Ready (containerd, image import, CNI).
NODE_TIMEOUT = 180.0
#: The service CIDR the apiserver hands out ClusterIPs from (never routed: loopback only).
SERVICE_CIDR = "10.0.0.0/24"

_live: set[LocalCluster] = set()
_live_lock = threading.Lock()
forkgate.renew_in_child(globals(), "_live_lock", threading.Lock)


class ClusterError(KubeError):
    """The local cluster could not start, or a component failed."""


def _version_tuple(version: str) -> Tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


class LocalCluster:
    """A throwaway Kubernetes cluster on loopback, for tests.

    ``with LocalCluster() as c:`` starts Kubernetes ``version`` (the newest we build,
    1.37, by default; ``"1.20"`` is the oldest) and writes ``c.kubeconfig_path``, whose
    contexts are ``admin`` (client certificate in ``system:masters``; the current
    context), ``token`` (a static bearer token, also in ``system:masters``) and ``nobody``
    (a static bearer token with no RBAC bindings). RBAC authorization is on.

    With ``node=True`` (the default; root only, and only on the newest version) the
    cluster has one real node, ``kubesync-node``: kube-scheduler places pods, the kubelet
    runs them on containerd + runc, serves their logs, exec and port-forward, and pods
    get IPs from a bridge network. Pods run :data:`TEST_IMAGE` (busybox). The
    ServiceAccount admission plugin and the token controller are on, as in a real
    cluster. ``node=False`` is a control plane alone: faster to start, no pod ever runs.

    Start and stop from the same thread: on Linux the children are tied to the thread
    that started them.
    """

    def __init__(
        self,
        *,
        version: str = NEWEST,
        node: bool = True,
        controller_manager: bool = True,
        apiserver_args: Optional[List[str]] = None,
        base_dir: Optional[str] = None,
    ):
        try:
            self._minor = _version_tuple(version)
        except ValueError:
            raise ValueError(
                f"LocalCluster(version=) takes a Kubernetes version such as {NEWEST!r} or "
                f"{OLDEST!r}, not {version!r}"
            ) from None
        if node and not controller_manager:
            raise ValueError("a node needs the controller manager (node=False for none)")
        #: The Kubernetes version asked for ("1.37"); ``server_version`` is what runs.
        self.version = version
        #: Whether the cluster has a node that runs pods.
        self.node = node
        #: The node's name, or None without a node.
        self.node_name: Optional[str] = NODE_NAME if node else None
        #: The apiserver's gitVersion once started ("v1.37.2").
        self.server_version: Optional[str] = None
        self._with_kcm = controller_manager
        self._extra_args = list(apiserver_args or [])
        self._base_dir = base_dir or _default_base()
        self.dir: Optional[Path] = None
        self.pki: Optional[Pki] = None
        self.etcd_port = 0
        self.port = 0
        self.tokens: Dict[str, str] = {}
        self._procs: Dict[str, Proc] = {}
        self._node: Optional[Node] = None
        self._owner_lock: Optional[IO[str]] = None
        self._owner_pid = os.getpid()
        self._bins: Dict[str, str] = {}
        self._lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def kubeconfig_path(self) -> str:
        if self.dir is None:
            raise ClusterError("the local cluster is not started")
        return str(self.dir / "kubeconfig")

    @property
    def ca_path(self) -> str:
        if self.pki is None:
            raise ClusterError("the local cluster is not started")
        return str(self.pki.ca.cert)

    def start(self) -> LocalCluster:
        with self._lock:
            if self.dir is not None:
                return self
            self._bins = find_binaries(BINARIES, version=self.version)
            node_assets = None
            if self.node:
                node_assets = self._node_assets()
                try:
                    check_can_run(Path(self._base_dir), node_assets)
                except (PermissionError, FileNotFoundError, ValueError) as e:
                    raise ClusterError(f"cannot start the node: {e}") from None
            sweep_stale_folders(self._base_dir)
            self.dir = self._make_folder()
            self._owner_pid = os.getpid()
            with _live_lock:
                _live.add(self)
            try:
                self.pki = make_pki(self.dir, node_name=self.node_name)
                self.tokens = {"token": secrets.token_hex(24), "nobody": secrets.token_hex(24)}
                self._write_token_file()
                self._write_kubeconfig()
                self._start_etcd()
                self._start_apiserver()
                self.server_version = str(self._get("/version")["gitVersion"])
                if self._with_kcm:
                    self._start_controller_manager()
                if node_assets is not None:
                    self._start_scheduler()
                    self._node = Node(self.dir, assets=node_assets, kubelet=self._bins["kubelet"],
                                      pki=self.pki, server=self.server)
                    self._start_node(self._node)
            except BaseException:
                self.stop()
                raise
            log.info("local cluster %s up at %s (folder %s)", self.server_version, self.server,
                     self.dir)
            return self

    def stop(self) -> None:
        """End every process and remove the folder. Safe to call more than once."""
        with self._lock:
            if self._node is not None:
                self._node.stop()
                self._node = None
            for name in ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
                proc = self._procs.pop(name, None)
                if proc is not None:
                    proc.stop()
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
            if self._owner_lock is not None:
                self._owner_lock.close()
                self._owner_lock = None
            with _live_lock:
                _live.discard(self)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.stop()

    @property
    def pod_subnet(self) -> Optional[str]:
        """The node's pod network ("10.X.Y.0/24"), or None without a node."""
        return self._node.pod_subnet if self._node is not None else None

    def _node_assets(self) -> NodeAssets:
        try:
            self._bins.update(find_binaries(NODE_K8S_BINARIES, version=self.version))
        except MissingBinaries:
            if _version_tuple(NEWEST) != self._minor:
                raise ClusterError(
                    f"a node on Kubernetes {self.version} needs its kube-scheduler and kubelet, "
                    f"which scripts/install-test-cluster builds only for {NEWEST}: go without "
                    "the node (LocalCluster(node=False), pytest --no-kube-node or "
                    "KUBESYNC_TEST_NODE=0)"
                ) from None
            raise
        return find_node_assets()

    def _make_folder(self) -> Path:
        """The private folder, locked before the sweep can see its name (see sweep.py)."""
        tmp = Path(tempfile.mkdtemp(prefix=".kubesync-new-", dir=self._base_dir))
        self._owner_lock = open(tmp / OWNER_LOCK, "w")  # held, and so locked, while we run
        fcntl.flock(self._owner_lock, fcntl.LOCK_EX)
        self._owner_lock.write(str(os.getpid()))
        self._owner_lock.flush()
        final = Path(tempfile.mkdtemp(prefix=PREFIX, dir=self._base_dir))
        os.rmdir(final)
        os.rename(tmp, final)
        return final

    def pids(self) -> Dict[str, int]:
        """The running components' process ids (for tests that check cleanup)."""
        procs = dict(self._procs)
        if self._node is not None and self._node.proc is not None:
            procs["node"] = self._node.proc
        return {n: p.popen.pid for n, p in procs.items() if p.popen is not None}

    def node_logs(self, lines: int = 25) -> str:
        """The tail of the node's logs (nodeinit, containerd, kubelet), for failure reports."""
        return self._node.logs(lines) if self._node is not None else ""

    # -- reliability helpers ------------------------------------------------------------

    def restart_apiserver(self) -> None:
        """Stop and start kube-apiserver: same etcd data, port and credentials.

        The controller manager and the scheduler are restarted after it: their watches
        would otherwise back off for up to 30 s (longer after a compaction's 410s), and
        the next test's namespace would wait that long for its ServiceAccount. The
        kubelet keeps running and reconnects, as a real node does.
        """
        with self._lock:
            proc = self._procs.pop("kube-apiserver", None)
            if proc is not None:
                proc.stop()
            self._start_apiserver()
            self._restart_controllers()

    def _restart_controllers(self) -> None:
        for name, start in (("kube-controller-manager", self._start_controller_manager),
                            ("kube-scheduler", self._start_scheduler)):
            proc = self._procs.pop(name, None)
            if proc is not None:
                proc.stop()
                start()

    def stop_apiserver(self) -> None:
        """Stop kube-apiserver alone (``start_apiserver()`` brings it back)."""
        with self._lock:
            proc = self._procs.pop("kube-apiserver", None)
            if proc is not None:
                proc.stop()

    def start_apiserver(self) -> None:
        with self._lock:
            if "kube-apiserver" not in self._procs:
                self._start_apiserver()
                self._restart_controllers()

    def compact(self, *, restart_apiserver: bool = True) -> int:
        """Compact etcd to its current revision; returns that revision.

        The apiserver's watch cache keeps serving recent events from memory after etcd
        compacts, so by default the apiserver is restarted too: then a watch from any older
        resourceVersion gets 410 Gone, as it would once a real cluster's cache moved on.
        """
        out = self._etcdctl("endpoint", "status", "--write-out=json")
        try:
            revision = int(json.loads(out)[0]["Status"]["header"]["revision"])
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise ClusterError(f"cannot read etcd's revision from {out!r}") from e
        self._etcdctl("compaction", str(revision), "--physical")
        if restart_apiserver:
            self.restart_apiserver()
        return revision

    # -- internals ----------------------------------------------------------------------

    def _etcdctl(self, *args: str) -> str:
        env = dict(os.environ, ETCDCTL_API="3")
        proc = subprocess.run(
            [self._bins["etcdctl"], f"--endpoints=http://127.0.0.1:{self.etcd_port}", *args],
            capture_output=True, env=env, check=False, timeout=60,
        )
        if proc.returncode != 0:
            raise ClusterError(f"etcdctl {args[0]} failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout.decode()

    def _write_token_file(self) -> None:
        assert self.dir is not None
        rows = [
            f'{self.tokens["token"]},kubesync-token-user,kubesync-token-uid,"system:masters"',
            f'{self.tokens["nobody"]},kubesync-nobody,kubesync-nobody-uid',
        ]
        path = self.dir / "tokens.csv"
        path.write_text("\n".join(rows) + "\n")
        path.chmod(0o600)

    def _write_kubeconfig(self) -> None:
        assert self.dir is not None and self.pki is not None
        if not self.port:
            self.port = free_port()
        cfg: Dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "local", "cluster": {
                    "server": self.server, "certificate-authority": str(self.pki.ca.cert)}},
            ],
            "users": [
                {"name": "admin", "user": {
                    "client-certificate": str(self.pki.admin.cert),
                    "client-key": str(self.pki.admin.key)}},
                {"name": "token", "user": {"token": self.tokens["token"]}},
                {"name": "nobody", "user": {"token": self.tokens["nobody"]}},
            ],
            "contexts": [
                {"name": name, "context": {"cluster": "local", "user": name}}
                for name in ("admin", "token", "nobody")
            ],
            "current-context": "admin",
        }
        path = self.dir / "kubeconfig"
        # JSON is YAML: no YAML writer needed.
        path.write_text(json.dumps(cfg, indent=2))
        path.chmod(0o600)

    def _start_etcd(self) -> None:
        assert self.dir is not None
        self.etcd_port = free_port()
        peer = free_port()
        data = self.dir / "etcd"
        data.mkdir(mode=0o700)
        argv = [
            self._bins["etcd"], "--name=kubesync", f"--data-dir={data}",
            f"--listen-client-urls=http://127.0.0.1:{self.etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{self.etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=kubesync=http://127.0.0.1:{peer}",
            "--log-level=warn",
        ]
        proc = Proc("etcd", argv, self.dir / "etcd.log")
        proc.start()
        self._procs["etcd"] = proc
        self._wait(proc, self._etcd_ready)

    def _etcd_ready(self) -> bool:
        r = requests.get(f"http://127.0.0.1:{self.etcd_port}/health", timeout=2)
        return r.status_code == 200 and json.loads(r.text).get("health") in ("true", True)

    @property
    def service_account_admission(self) -> bool:
        """Whether pods get a ServiceAccount (and its token) at admission, as in real clusters.

        Off on servers older than 1.24 without a node: there, creating a pod in a fresh
        namespace races the token controller ("No API token found for service account").
        """
        return self.node or self._minor >= (1, 24)

    def _apiserver_argv(self) -> List[str]:
        assert self.dir is not None and self.pki is not None
        p = self.pki
        argv = [
            self._bins["kube-apiserver"],
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}",
            f"--tls-cert-file={p.serving.cert}", f"--tls-private-key-file={p.serving.key}",
            f"--client-ca-file={p.ca.cert}",
            f"--token-auth-file={self.dir / 'tokens.csv'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p.sa_pub}",
            f"--service-account-signing-key-file={p.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # On loopback the default reconciler logs an error every 10 s.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            f"--cert-dir={self.dir / 'apiserver-certs'}",
        ]
        if self._minor < (1, 24):
            argv.append("--insecure-port=0")  # on by default before 1.24, gone after
        if not self.service_account_admission:
            argv.append("--disable-admission-plugins=ServiceAccount")
        if self.node:
            assert p.kubelet_client is not None
            argv += [
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                f"--kubelet-client-certificate={p.kubelet_client.cert}",
                f"--kubelet-client-key={p.kubelet_client.key}",
                "--kubelet-preferred-address-types=InternalIP,Hostname",
            ]
        else:
            argv.append("--authorization-mode=RBAC")
        return argv + self._extra_args

    def _start_apiserver(self) -> None:
        assert self.dir is not None
        proc = Proc("kube-apiserver", self._apiserver_argv(), self.dir / "kube-apiserver.log")
        proc.start()
        self._procs["kube-apiserver"] = proc
        self._wait(proc, self._apiserver_ready)

    def _admin_get(self, path: str) -> requests.Response:
        assert self.pki is not None
        return requests.get(
            f"{self.server}{path}",
            verify=str(self.pki.ca.cert),
            cert=(str(self.pki.admin.cert), str(self.pki.admin.key)),
            timeout=5,
        )

    def _get(self, path: str) -> Any:
        """GET ``path`` as admin: the decoded body, or None on 404."""
        r = self._admin_get(path)
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise ClusterError(f"GET {path}: {r.status_code} {r.text[:200]}")
        return r.json()

    def _apiserver_ready(self) -> bool:
        return self._admin_get("/readyz").status_code == 200

    def _health_ready(self, port: int) -> Callable[[], bool]:
        def ready() -> bool:
            # A component's own self-signed serving certificate: nothing to verify it with.
            r = requests.get(f"https://127.0.0.1:{port}/healthz", verify=False, timeout=2)
            return r.status_code == 200
        return ready

    def _start_component(self, name: str, extra: List[str]) -> None:
        """kube-controller-manager or kube-scheduler: our kubeconfig, alone, health-checked."""
        assert self.dir is not None
        port = free_port()
        argv = [
            self._bins[name],
            f"--kubeconfig={self.dir / 'kubeconfig'}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1", f"--secure-port={port}",
            *extra,
        ]
        proc = Proc(name, argv, self.dir / f"{name}.log")
        proc.start()
        self._procs[name] = proc
        with _no_insecure_warnings():
            self._wait(proc, self._health_ready(port))

    def _start_scheduler(self) -> None:
        self._start_component("kube-scheduler", [])

    def _start_node(self, node: Node) -> None:
        node.start()

        def wait(ready: Callable[[], bool], timeout: float, what: str) -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    if ready():
                        return
                except RuntimeError as e:
                    raise ClusterError(f"{e}:\n{node.logs()}") from None
                except (requests.RequestException, ValueError, ClusterError):
                    pass
                time.sleep(0.2)  # polling the API for the node; nothing to wait on instead
            raise ClusterError(f"{what} not reached after {timeout:.0f}s:\n{node.logs()}")

        node.wait_ready(self._get, NODE_TIMEOUT, wait)

    def _start_controller_manager(self) -> None:
        assert self.pki is not None
        p = self.pki
        args = [
            f"--service-account-private-key-file={p.sa_key}",
            f"--root-ca-file={p.ca.cert}",
            "--use-service-account-credentials=false",
            # The default 20 requests/s, shared by every controller, is what makes a
            # test's new namespace wait for its ServiceAccount while another test's
            # thousand objects are garbage-collected.
            "--kube-api-qps=500", "--kube-api-burst=1000",
        ]
        if self._minor < (1, 24):
            args.append("--port=0")  # the insecure port: on by default before 1.24
        # The cloud controllers left kube-controller-manager after 1.20; no cloud here.
        off = ["-route", "-service", "-cloud-node-lifecycle"] if self._minor < (1, 24) else []
        # No pod CIDRs to hand out: the CNI's IPAM has its own range.
        off.append("-nodeipam")
        if not self.node:
            # No nodes here: keep the node-facing controllers quiet.
            off += ["-nodelifecycle", "-attachdetach", "-persistentvolume-binder",
                    "-persistentvolume-expander", "-csrsigning"]
        args.append("--controllers=" + ",".join(["*", *off]))
        assert self.dir is not None
        # Its default is under /usr/libexec, which it would create on the machine.
        args.append(f"--flex-volume-plugin-dir={self.dir / 'flexvolume'}")
        self._start_component("kube-controller-manager", args)

    def _wait(self, proc: Proc, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last: Optional[BaseException] = None
        while time.monotonic() < deadline:
            if not proc.running():
                raise ClusterError(f"{proc.name} exited on start:\n{proc.tail()}")
            try:
                if ready():
                    return
            except (requests.RequestException, ValueError) as e:
                last = e
            time.sleep(0.1)  # polling a starting server; nothing to wait on instead
        raise ClusterError(
            f"{proc.name} not ready after {START_TIMEOUT:.0f}s ({last}):\n{proc.tail()}"
        )


@contextlib.contextmanager
def _no_insecure_warnings() -> Iterator[None]:
    """Silence urllib3's warning for the health probes of self-signed components."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        yield


def _default_base() -> str:
    """A private tmpfs folder when there is one: etcd fsyncs, and tmpfs makes that free."""
    override = os.environ.get("KUBESYNC_TEST_TMPDIR")
    if override:
        return override
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return shm
    return tempfile.gettempdir()


@atexit.register
def _stop_all() -> None:
    with _live_lock:
        live = list(_live)
    for cluster in live:
        if cluster._owner_pid == os.getpid():  # a forked child exiting leaves the parent's
            cluster.stop()
