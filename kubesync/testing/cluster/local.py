"""LocalCluster: a real etcd + kube-apiserver + kube-controller-manager on loopback.

For tests. Everything lives in one private temp folder (PKI, etcd data, logs, the
kubeconfig); ``stop()`` ends every process and removes the folder. Child processes get
SIGTERM from the kernel if the process that started them dies (Linux ``PR_SET_PDEATHSIG``),
so even a killed test run leaves no server behind; a folder left by a killed run is
removed by the next ``LocalCluster`` start.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Callable, Dict, List, Optional, Type

import requests

from kubesync.errors import KubeError
from kubesync.testing.assets import find_binaries
from kubesync.testing.pki import Pki, make_pki

log = logging.getLogger("kubesync.testing")

_PREFIX = "kubesync-cluster-"
#: How long a component may take to become ready. A cold apiserver on 2 cores needs ~10 s.
START_TIMEOUT = 120.0
#: The service CIDR the apiserver hands out ClusterIPs from (never routed: loopback only).
SERVICE_CIDR = "10.0.0.0/24"

_live: set[LocalCluster] = set()
_live_lock = threading.Lock()


class ClusterError(KubeError):
    """The local cluster could not start, or a component failed."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the parent goes away."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except OSError:
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_folders(base: Optional[str] = None) -> List[str]:
    """Remove folders of local clusters whose owning process is gone (a killed run)."""
    base = base or tempfile.gettempdir()
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(base):
            if not entry.name.startswith(_PREFIX) or not entry.is_dir():
                continue
            try:
                owner = int((Path(entry.path) / "owner.pid").read_text().strip())
            except (OSError, ValueError):
                owner = -1
            if owner > 0 and _pid_alive(owner):
                continue
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


class _Proc:
    """One component: its command line, its process and its log file."""

    def __init__(self, name: str, argv: List[str], log_path: Path):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.popen: Optional[subprocess.Popen[bytes]] = None
        self._log: Optional[IO[bytes]] = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            close_fds=True,
        )

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        p = self.popen
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class LocalCluster:
    """A throwaway Kubernetes control plane on loopback, for tests.

    ``with LocalCluster() as c:`` starts it and writes ``c.kubeconfig_path``, whose contexts
    are ``admin`` (client certificate in ``system:masters``; the current context), ``token``
    (a static bearer token, also in ``system:masters``) and ``nobody`` (a static bearer
    token with no RBAC bindings). RBAC authorization is on.

    Start and stop from the same thread: on Linux the children are tied to the thread
    that started them.
    """

    def __init__(
        self,
        *,
        controller_manager: bool = True,
        apiserver_args: Optional[List[str]] = None,
        base_dir: Optional[str] = None,
    ):
        self._with_kcm = controller_manager
        self._extra_args = list(apiserver_args or [])
        self._base_dir = base_dir or _default_base()
        self.dir: Optional[Path] = None
        self.pki: Optional[Pki] = None
        self.etcd_port = 0
        self.port = 0
        self.tokens: Dict[str, str] = {}
        self._procs: Dict[str, _Proc] = {}
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
            self._bins = find_binaries()
            sweep_stale_folders(self._base_dir)
            self.dir = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=self._base_dir))
            with _live_lock:
                _live.add(self)
            try:
                (self.dir / "owner.pid").write_text(str(os.getpid()))
                self.pki = make_pki(self.dir)
                self.tokens = {"token": secrets.token_hex(24), "nobody": secrets.token_hex(24)}
                self._write_token_file()
                self._write_kubeconfig()
                self._start_etcd()
                self._start_apiserver()
                if self._with_kcm:
                    self._start_controller_manager()
            except BaseException:
                self.stop()
                raise
            log.info("local cluster up at %s (folder %s)", self.server, self.dir)
            return self

    def stop(self) -> None:
        """End every process and remove the folder. Safe to call more than once."""
        with self._lock:
            for name in ("kube-controller-manager", "kube-apiserver", "etcd"):
                proc = self._procs.pop(name, None)
                if proc is not None:
                    proc.stop()
            if self.dir is not None:
                shutil.rmtree(self.dir, ignore_errors=True)
                self.dir = None
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

    def pids(self) -> Dict[str, int]:
        """The running components' process ids (for tests that check cleanup)."""
        return {n: p.popen.pid for n, p in self._procs.items() if p.popen is not None}

    # -- reliability helpers ------------------------------------------------------------

    def restart_apiserver(self) -> None:
        """Stop and start kube-apiserver: same etcd data, port and credentials."""
        with self._lock:
            proc = self._procs.pop("kube-apiserver", None)
            if proc is not None:
                proc.stop()
            self._start_apiserver()

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
            self.port = _free_port()
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
        self.etcd_port = _free_port()
        peer = _free_port()
        data = self.dir / "etcd"
        data.mkdir(mode=0o700)
        argv = [
            self._bins["etcd"], "--name=kubesync", f"--data-dir={data}",
            f"--listen-client-urls=http://127.0.0.1:{self.etcd_port}",
            f"--advertise-client-urls=http://127.0.0.1:{self.etcd_port}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=kubesync=http://127.0.0.1:{peer}",
            "--log-level=warn", "--logger=zap",
        ]
        proc = _Proc("etcd", argv, self.dir / "etcd.log")
        proc.start()
        self._procs["etcd"] = proc
        self._wait(proc, self._etcd_ready)

    def _etcd_ready(self) -> bool:
        r = requests.get(f"http://127.0.0.1:{self.etcd_port}/health", timeout=2)
        return r.status_code == 200 and json.loads(r.text).get("health") in ("true", True)

    def _apiserver_argv(self) -> List[str]:
        assert self.dir is not None and self.pki is not None
        p = self.pki
        return [
            self._bins["kube-apiserver"],
            f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            f"--secure-port={self.port}", "--insecure-port=0",
            f"--tls-cert-file={p.serving.cert}", f"--tls-private-key-file={p.serving.key}",
            f"--client-ca-file={p.ca.cert}",
            f"--token-auth-file={self.dir / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={p.sa_pub}",
            f"--service-account-signing-key-file={p.sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            # On loopback the default reconciler logs an error every 10 s.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            # No kubelet here, so pods never run; without this, creating a pod in a fresh
            # namespace races the token controller ("No API token found for service
            # account default") on Kubernetes 1.20.
            "--disable-admission-plugins=ServiceAccount",
            "--profiling=false",
            f"--cert-dir={self.dir / 'apiserver-certs'}",
            *self._extra_args,
        ]

    def _start_apiserver(self) -> None:
        assert self.dir is not None
        proc = _Proc("kube-apiserver", self._apiserver_argv(), self.dir / "kube-apiserver.log")
        proc.start()
        self._procs["kube-apiserver"] = proc
        self._wait(proc, self._apiserver_ready)

    def _apiserver_ready(self) -> bool:
        assert self.pki is not None
        r = requests.get(
            f"{self.server}/readyz",
            verify=str(self.pki.ca.cert),
            cert=(str(self.pki.admin.cert), str(self.pki.admin.key)),
            timeout=2,
        )
        return r.status_code == 200

    def _start_controller_manager(self) -> None:
        assert self.dir is not None and self.pki is not None
        p = self.pki
        argv = [
            self._bins["kube-controller-manager"],
            f"--kubeconfig={self.dir / 'kubeconfig'}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1", "--secure-port=0", "--port=0",
            f"--service-account-private-key-file={p.sa_key}",
            f"--root-ca-file={p.ca.cert}",
            "--use-service-account-credentials=false",
            # No nodes here: keep the node-facing controllers quiet.
            "--controllers=*,-nodeipam,-nodelifecycle,-attachdetach,-persistentvolume-binder,"
            "-persistentvolume-expander,-route,-service,-cloud-node-lifecycle,-csrsigning",
        ]
        proc = _Proc("kube-controller-manager", argv, self.dir / "kube-controller-manager.log")
        proc.start()
        self._procs["kube-controller-manager"] = proc
        # It has no health port here (secure and insecure serving off): give it a moment to
        # fail on bad flags, which shows as an exit.
        self._wait(proc, lambda: True)

    def _wait(self, proc: _Proc, ready: Callable[[], bool]) -> None:
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
        cluster.stop()
