"""The local cluster's node: a kubelet on containerd + runc, pods on a bridge network.

Everything the node writes lives in the cluster's folder (containerd's root, state and
``opt``, the kubelet's root, pod logs, CNI and IPAM state); what cannot be pointed there
(``/run``, ``/var/lib``, ``/var/log``) is a private tmpfs inside the node's mount
namespace. On the machine itself the node makes a bridge interface for the pod network
and a cgroup subtree, both named after the cluster, and the kubelet and the CNI bridge
change a few kernel settings (:data:`hostres.SYSCTLS`), saved first. All of it is undone
on stop, or from the records in the folder after a killed run (:mod:`.hostres`);
:mod:`.nodeinit` says how the namespaces keep a killed run from leaving processes or
mounts behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from kubesync.testing.assets import NodeAssets
from kubesync.testing.cluster import hostres
from kubesync.testing.cluster.procs import Proc, free_ports, tail
from kubesync.testing.pki import Pki

#: The node's name (the kubelet's certificate is for ``system:node:<name>``).
NODE_NAME = "kubesync-node"
#: The image test pods run: busybox with every applet (sh, cat, sleep, httpd, nc, tar, ...).
TEST_IMAGE = "kubesync.local/busybox:1"
#: The pod sandbox image, around a ``pause`` command of ours.
PAUSE_IMAGE = "kubesync.local/pause:1"
#: Written into the cluster folder; the sweep reads it to clean up after a killed run.
RESOURCES_FILE = "node-resources.json"
#: In the node's folder: the kernel settings as they were before the node changed them.
SYSCTLS_FILE = "sysctls.json"
#: In the node's folder: held by nodeinit while it runs (the sweep leaves a held one alone).
NODE_LOCK = "node.lock"
#: Private tmpfs inside the node's mount namespace (they hide what the machine has there).
PRIVATE_DIRS = ("/run", "/var/lib", "/var/log")
_SNAPSHOTTER = "overlayfs"


def check_can_run(folder: Path, assets: NodeAssets) -> None:
    """Refuse at once what would make the node fail later, saying why."""
    if os.geteuid() != 0:
        raise PermissionError(
            "a local cluster with a node runs containerd and the kubelet, which need root: "
            "run as root, or go without the node (LocalCluster(node=False), pytest "
            "--no-kube-node or KUBESYNC_TEST_NODE=0)"
        )
    for tool in ("unshare", "mount", "ip"):
        if shutil.which(tool) is None:
            raise FileNotFoundError(f"a local cluster with a node needs the `{tool}` command")
    needed = {"the cluster folder": str(folder), "the node's binaries": assets.cni_dir,
              "Python": sys.prefix}
    for what, path in needed.items():
        for private in PRIVATE_DIRS:
            if os.path.realpath(path).startswith(private + "/"):
                raise ValueError(
                    f"{what} ({path}) is under {private}, which the node hides behind a "
                    "private tmpfs; put it elsewhere (KUBESYNC_TEST_TMPDIR, KUBESYNC_CACHE)")


def _free_subnet() -> str:
    """``10.X.Y`` of a /24 in 10.200.0.0/13 that no address or route of this machine uses."""
    used = subprocess.run(["ip", "-4", "-o", "route", "show", "table", "all"],
                          capture_output=True, text=True, check=False).stdout
    used += subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True,
                           check=False).stdout
    for _ in range(64):
        net = f"10.{200 + secrets.randbelow(8)}.{secrets.randbelow(256)}"
        if f"{net}." not in used:
            return net
    raise RuntimeError("no free /24 for the pod network in 10.200.0.0/13")


class Node:
    """One node of a local cluster: started after the control plane, stopped before it."""

    def __init__(
        self,
        folder: Path,
        *,
        assets: NodeAssets,
        kubelet: str,
        pki: Pki,
        server: str,
        name: str = NODE_NAME,
    ):
        if pki.kubelet is None:
            raise ValueError("the PKI was made without a node")
        self.name = name
        self.dir = folder / "node"
        self.assets = assets
        self.kubelet_bin = kubelet
        self.pki = pki
        self.server = server
        token = secrets.token_hex(4)
        #: Bridge names are at most 15 bytes.
        self.bridge = f"ks-{token}"
        self.cgroup_root = f"/kubesync-{token}"
        net = _free_subnet()
        #: The pod network: a /24 of 10.200.0.0/13 that no address or route here uses.
        self.pod_subnet = f"{net}.0/24"
        #: The node's InternalIP: the pod network's gateway, on the node's bridge.
        self.ip = f"{net}.1"
        self.kubelet_port = 0
        self.healthz_port = 0
        self.proc: Optional[Proc] = None
        self._alive_w: Optional[int] = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        check_can_run(self.dir.parent, self.assets)
        self.dir.mkdir(mode=0o700)
        (self.dir.parent / RESOURCES_FILE).write_text(json.dumps(
            {"bridge": self.bridge, "cgroup_root": self.cgroup_root,
             "sysctls": str(self.dir / SYSCTLS_FILE)}))
        self.kubelet_port, self.healthz_port = free_ports(2)
        alive_r, self._alive_w = os.pipe()
        try:
            config = self._write_configs(alive_r)
            argv = [
                "unshare", "--pid", "--fork", "--kill-child=SIGTERM", "--mount",
                "--propagation", "private", "--mount-proc",
                # By path and standard library only: up and handling signals at once.
                sys.executable, "-E", "-s", str(Path(__file__).with_name("nodeinit.py")),
                str(config),
            ]
            # unshare blocks SIGTERM while it waits: it gets SIGKILL when we die, and then
            # the kernel sends nodeinit SIGTERM (--kill-child); nodeinit also sees its
            # pipe from us reach end-of-file.
            self.proc = Proc("node", argv, self.dir / "nodeinit.log",
                             death_signal=signal.SIGKILL, pass_fds=(alive_r,))
            self.proc.start()
        finally:
            os.close(alive_r)

    def stop(self, timeout: float = 60.0) -> None:
        """Close nodeinit's pipe and wait for it; then undo on the host what it left."""
        if self.proc is None:
            return
        if self._alive_w is not None:
            os.close(self._alive_w)
            self._alive_w = None
        popen = self.proc.popen
        if popen is not None:
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                # SIGKILL from outside the namespace cannot be blocked; its processes go too.
                init = self._init_pid()
                with contextlib.suppress(ProcessLookupError, TypeError):
                    os.kill(init, signal.SIGKILL)  # type: ignore[arg-type]
                popen.kill()
                popen.wait(timeout)
        self.proc.stop(timeout)
        self.proc = None
        hostres.release(self.bridge, self.cgroup_root, str(self.dir / SYSCTLS_FILE))

    def running(self) -> bool:
        return self.proc is not None and self.proc.running()

    def _init_pid(self) -> Optional[int]:
        """nodeinit's pid as we see it: the child of the unshare process."""
        if self.proc is None or self.proc.popen is None:
            return None
        pid = self.proc.popen.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return None
        return int(children[0]) if children else None

    def logs(self, lines: int = 25) -> str:
        parts = []
        for name in ("nodeinit", "containerd", "kubelet"):
            text = tail(self.dir / f"{name}.log", lines)
            if text:
                parts.append(f"--- {name}.log\n{text}")
        return "\n".join(parts)

    def wait_ready(self, get: Callable[[str], Any], timeout: float,
                   wait: Callable[[Callable[[], bool], float, str], None]) -> None:
        """Until the API server shows this node Ready."""

        def ready() -> bool:
            if not self.running():
                raise RuntimeError("the node exited on start")
            node = get(f"/api/v1/nodes/{self.name}")
            conditions = (node or {}).get("status", {}).get("conditions", [])
            return any(c.get("type") == "Ready" and c.get("status") == "True"
                       for c in conditions)

        wait(ready, timeout, f"node {self.name} Ready")

    # -- configuration -----------------------------------------------------------------

    def _write_configs(self, alive_fd: int) -> Path:
        d = self.dir
        for sub in ("containerd", "kubelet", "pod-logs", "cni/net.d", "cni/ipam", "cni/cache",
                    "volume-plugins"):
            (d / sub).mkdir(parents=True, mode=0o700, exist_ok=True)
        socket_path = d / "containerd" / "containerd.sock"
        (d / "containerd.toml").write_text(self._containerd_toml(socket_path))
        (d / "cni" / "net.d" / "10-kubesync.conflist").write_text(json.dumps(self._cni_conf()))
        (d / "kubelet.json").write_text(json.dumps(self._kubelet_config(socket_path), indent=1))
        self._write_kubelet_kubeconfig(d / "kubelet.kubeconfig")
        path_env = os.pathsep.join(
            [os.path.dirname(self.assets.binaries["containerd"]),
             os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")])
        cfg: Dict[str, Any] = {
            "env": {"PATH": path_env, "HOME": str(d)},
            "alive_fd": alive_fd,
            "lock": str(d / NODE_LOCK),
            "sysctls": str(d / SYSCTLS_FILE),
            # Private in the node's mount namespace: containerd's shim sockets and runc
            # state (/run/containerd, /run/runc), CNI's cache (/var/lib/cni), iptables'
            # lock, the kubelet's /var/log/containers links.
            "tmpfs": list(PRIVATE_DIRS),
            "cgroup_root": self.cgroup_root,
            "bridge": self.bridge,
            "node_ip": self.ip,
            "pod_prefix": 24,
            "snapshotter": _SNAPSHOTTER,
            "ctr": self.assets.binaries["ctr"],
            "images": [self.assets.images["pause"], self.assets.images["busybox"]],
            "containerd": {
                "argv": [self.assets.binaries["containerd"], f"--config={d / 'containerd.toml'}"],
                "socket": str(socket_path),
                "log": str(d / "containerd.log"),
            },
            "kubelet": {
                "argv": self._kubelet_argv(),
                "log": str(d / "kubelet.log"),
                # No sbin, so no iptables: the kubelet then skips its own chains
                # (KUBE-FIREWALL and the canaries), which it only makes for kube-proxy
                # and which would outlive the node in the machine's tables.
                "path": "/usr/local/bin:/usr/bin:/bin",
            },
        }
        path = d / "nodeinit.json"
        path.write_text(json.dumps(cfg, indent=1))
        return path

    def _containerd_toml(self, socket_path: Path) -> str:
        d = self.dir / "containerd"
        return f"""\
version = 3
root = "{d / 'root'}"
state = "{d / 'state'}"
# NRI would listen on /var/run/nri; nothing here uses it.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[plugins.'io.containerd.internal.v1.opt']
  path = "{d / 'opt'}"

[grpc]
  address = "{socket_path}"

[ttrpc]
  address = "{socket_path}.ttrpc"

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "{_SNAPSHOTTER}"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{PAUSE_IMAGE}"

[plugins.'io.containerd.cri.v1.runtime']
  enable_selinux = false
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = true
  enable_unprivileged_icmp = true
  # Our own oom_score_adj may be the lowest we are allowed (no CAP_SYS_RESOURCE in some
  # sandboxes); the pause container's -998 would then fail to start every pod.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "{self.assets.binaries['runc']}"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{self.assets.cni_dir}"]
    conf_dir = "{self.dir / 'cni' / 'net.d'}"

[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""

    def _cni_conf(self) -> Dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": "kubesync",
            "plugins": [{
                "type": "bridge",
                "bridge": self.bridge,
                "isGateway": True,
                # No masquerading and no portmap in the chain: both would write iptables
                # rules into the machine's own tables, which outlive a killed run.
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": self.pod_subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(self.dir / "cni" / "ipam"),
                },
            }],
        }

    def _kubelet_config(self, socket_path: Path) -> Dict[str, Any]:
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": self.ip,
            "port": self.kubelet_port,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": self.healthz_port,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.pki.ca.cert)},
            },
            # Only the apiserver holds a certificate from our CA that the kubelet accepts.
            "authorization": {"mode": "AlwaysAllow"},
            "containerRuntimeEndpoint": f"unix://{socket_path}",
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup_root,
            # The machines mount cgroup v1, which the kubelet refuses from 1.35 unless told.
            "failCgroupV1": False,
            "failSwapOn": False,
            "resolvConf": "",
            "podLogsDir": str(self.dir / "pod-logs"),
            "volumePluginDir": str(self.dir / "volume-plugins"),
            # Never garbage-collect the locally made images: nothing could pull them back.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
            "serializeImagePulls": False,
            # Pod and node status sooner than the 10 s default: tests wait on it.
            "nodeStatusUpdateFrequency": "4s",
            "syncFrequency": "10s",
            "fileCheckFrequency": "10s",
            "shutdownGracePeriod": "0s",
        }

    def _kubelet_argv(self) -> List[str]:
        return [
            self.kubelet_bin,
            f"--config={self.dir / 'kubelet.json'}",
            f"--kubeconfig={self.dir / 'kubelet.kubeconfig'}",
            f"--root-dir={self.dir / 'kubelet'}",
            f"--cert-dir={self.dir / 'kubelet' / 'pki'}",
            f"--hostname-override={self.name}",
            f"--node-ip={self.ip}",
            "--v=1",
        ]

    def _write_kubelet_kubeconfig(self, path: Path) -> None:
        assert self.pki.kubelet is not None
        cfg = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "local", "cluster": {
                "server": self.server, "certificate-authority": str(self.pki.ca.cert)}}],
            "users": [{"name": "kubelet", "user": {
                "client-certificate": str(self.pki.kubelet.cert),
                "client-key": str(self.pki.kubelet.key)}}],
            "contexts": [{"name": "kubelet", "context": {"cluster": "local", "user": "kubelet"}}],
            "current-context": "kubelet",
        }
        path.write_text(json.dumps(cfg))
        path.chmod(0o600)
