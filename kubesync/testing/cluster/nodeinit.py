"""PID 1 of the local cluster's node: runs containerd and the kubelet, and cleans up.

``LocalCluster`` starts this under ``unshare --pid --mount --fork --kill-child=SIGTERM``,
so the node lives in its own PID and mount namespaces:

- every mount the node makes (image snapshots, pod volumes, the tmpfs laid over ``/run``
  and ``/var/lib`` so that containerd, runc and CNI state stays private) exists only
  inside, and goes when the namespace's last process does;
- when this process exits the kernel kills every process left in the namespace (shims
  and containers included), and when ``unshare`` is killed (a killed test run) this
  process gets SIGTERM.

On SIGTERM it stops the kubelet and containerd, kills what is left, deletes the pod
network's bridge and the node's cgroups, and exits. What a SIGKILL leaves behind (the
bridge, empty cgroups, the folder) the next ``LocalCluster`` start sweeps away.

Run as ``python -m kubesync.testing.cluster.nodeinit CONFIG.json``; the config is written
by :mod:`kubesync.testing.cluster.node`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Dict, List, NoReturn, Optional

from kubesync.testing.cluster.hostres import (
    delete_bridge,
    make_bridge,
    make_cgroups,
    remove_cgroups,
)

_STOP_GRACE = 10.0


class _Stop(Exception):
    pass


def _log(msg: str) -> None:
    print(f"[nodeinit {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _on_term(signum: int, frame: Any) -> NoReturn:
    raise _Stop(signum)


def _spawn(argv: List[str], log_path: str, env: Dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, close_fds=True)


def _wait_socket(path: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{path}: its daemon exited ({proc.returncode}) before serving")
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(path)
                return
            except OSError:
                pass
        time.sleep(0.05)  # polling a starting daemon's socket; nothing to wait on instead
    raise RuntimeError(f"{path} not served after {timeout:.0f}s")


def _stop(proc: Optional[subprocess.Popen[bytes]], name: str) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(_STOP_GRACE)
    except subprocess.TimeoutExpired:
        _log(f"{name} did not stop in {_STOP_GRACE:.0f}s; killing it")
        proc.kill()


def _reap_all() -> None:
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return
        except OSError as e:
            if e.errno != errno.EINTR:
                return


def run(cfg: Dict[str, Any]) -> int:
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, _on_term)
    env = dict(cfg["env"])
    containerd = kubelet = None
    code = 0
    try:
        for target in cfg["tmpfs"]:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", target],
                           check=True, capture_output=True)
        make_cgroups(cfg["cgroup_root"])
        # The node's address: the pod network's gateway on its bridge (the kubelet will not
        # report a loopback address, and the apiserver reaches the kubelet there).
        make_bridge(cfg["bridge"], cfg["node_ip"], cfg["pod_prefix"])
        _log("starting containerd")
        containerd = _spawn(cfg["containerd"]["argv"], cfg["containerd"]["log"], env)
        _wait_socket(cfg["containerd"]["socket"], containerd, 60)
        for image in cfg["images"]:
            subprocess.run(
                [cfg["ctr"], "--address", cfg["containerd"]["socket"], "--namespace", "k8s.io",
                 "images", "import", "--snapshotter", cfg["snapshotter"], image],
                check=True, capture_output=True, env=env,
            )
        _log(f"imported {len(cfg['images'])} images; starting the kubelet")
        kubelet = _spawn(cfg["kubelet"]["argv"], cfg["kubelet"]["log"],
                         dict(env, PATH=cfg["kubelet"].get("path", env["PATH"])))
        while True:
            pid, status = os.waitpid(-1, 0)
            for name, proc in (("containerd", containerd), ("kubelet", kubelet)):
                if pid == proc.pid:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    _log(f"{name} exited ({proc.returncode}); stopping the node")
                    code = 1
                    raise _Stop()
    except _Stop:
        pass
    except subprocess.CalledProcessError as e:
        _log(f"{e.cmd[0]} failed ({e.returncode}): {e.stderr.decode(errors='replace')}")
        code = 1
    except Exception as e:
        _log(f"node start failed: {e!r}")
        code = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop(kubelet, "kubelet")
        _stop(containerd, "containerd")
        with contextlib.suppress(ProcessLookupError):  # nothing else left
            os.kill(-1, signal.SIGKILL)  # as PID 1: every other process of the namespace
        _reap_all()
        delete_bridge(cfg["bridge"])
        remove_cgroups(cfg["cgroup_root"])
        _log("node stopped")
    return code


def main(argv: List[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m kubesync.testing.cluster.nodeinit CONFIG.json", file=sys.stderr)
        return 2
    if os.getpid() != 1:
        # Its clean-up signals every process of its PID namespace: only ever as PID 1.
        print("nodeinit runs only as PID 1 of the node's own PID namespace", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        return run(json.load(f))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
