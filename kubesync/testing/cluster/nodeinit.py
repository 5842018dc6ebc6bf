"""PID 1 of the local cluster's node: runs containerd and the kubelet, and cleans up.

``LocalCluster`` runs this file by its path (standard library only, so it is up and
handling signals at once) under ``unshare --pid --mount --fork --kill-child=SIGTERM``,
so the node lives in its own PID and mount namespaces:

- every mount the node makes (image snapshots, pod volumes, the tmpfs laid over ``/run``,
  ``/var/lib`` and ``/var/log`` so that containerd, runc, CNI and kubelet state stays
  private) exists only inside, and goes when the namespace's last process does;
- when this process exits the kernel kills every process left in the namespace (shims
  and containers included).

It stops the node when the pipe its starter holds open reaches end-of-file (the starter
closed it, or died: this covers a signal lost before the handlers were set), on SIGTERM
(``unshare`` being killed sends one), or when containerd or the kubelet exits. Stopping:
the kubelet and containerd are asked to stop, what is left is killed, the host settings
the kubelet and CNI changed are put back, and the bridge and cgroups are removed.
Whatever a SIGKILL of this process leaves behind, ``LocalCluster`` (or the next start's
sweep) removes from the host side, from the records in the cluster folder.
"""

import signal
import sys
from typing import Any, NoReturn


class _Stop(Exception):
    pass


def _on_term(signum: int, frame: Any) -> NoReturn:
    raise _Stop(signum)


# First of all: the first process of a PID namespace ignores signals it has no handler for.
signal.signal(signal.SIGTERM, _on_term)
signal.signal(signal.SIGINT, _on_term)

import contextlib  # noqa: E402
import errno  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import select  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
from typing import Dict, List, Optional  # noqa: E402

if __package__:
    from kubesync.testing.cluster import hostres
else:  # run by its path, as LocalCluster does: hostres is beside this file
    import hostres  # type: ignore[no-redef, import-not-found]

_STOP_GRACE = 10.0
#: How often the main loop looks at the pipe and its children.
_TICK = 0.5


def _log(msg: str) -> None:
    print(f"[nodeinit {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _spawn(argv: List[str], log_path: str, env: Dict[str, str]) -> "subprocess.Popen[bytes]":
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, close_fds=True)


def _starter_gone(fd: int, timeout: float) -> bool:
    """Whether the starter's end of the liveness pipe is closed (waits up to ``timeout``)."""
    readable, _, _ = select.select([fd], [], [], timeout)
    return bool(readable) and os.read(fd, 1) == b""


def _wait_socket(path: str, proc: "subprocess.Popen[bytes]", alive_fd: int,
                 timeout: float) -> None:
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
        if _starter_gone(alive_fd, 0.05):  # also the poll interval of a starting daemon
            raise _Stop()
    raise RuntimeError(f"{path} not served after {timeout:.0f}s")


def _stop(proc: "Optional[subprocess.Popen[bytes]]", name: str) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(_STOP_GRACE)
    except subprocess.TimeoutExpired:
        _log(f"{name} did not stop in {_STOP_GRACE:.0f}s; killing it")
        proc.kill()


def _kill_the_rest() -> None:
    """SIGKILL every other process of this PID namespace, and reap them."""
    if os.getpid() != 1:  # kill(-1) outside our own namespace would hit the whole machine
        return
    with contextlib.suppress(ProcessLookupError):  # nothing else left
        os.kill(-1, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        except OSError as e:
            if e.errno != errno.EINTR:
                return
            continue
        if pid == 0:
            time.sleep(0.05)  # killed processes still exiting; nothing to wait on instead


def run(cfg: Dict[str, Any]) -> int:
    """The node's life. Only ever as PID 1 of its own namespaces (``main`` checks)."""
    env = dict(cfg["env"])
    alive_fd = int(cfg["alive_fd"])
    containerd = kubelet = None
    code = 0
    try:
        if _starter_gone(alive_fd, 0):
            raise _Stop()
        lock = open(cfg["lock"], "w")  # held, and so locked, for the node's life
        fcntl.flock(lock, fcntl.LOCK_EX)
        hostres.save_sysctls(cfg["sysctls"])
        for target in cfg["tmpfs"]:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", target],
                           check=True, capture_output=True)
        hostres.make_cgroups(cfg["cgroup_root"])
        # The node's address: the pod network's gateway on its bridge (the kubelet will not
        # report a loopback address, and the apiserver reaches the kubelet there).
        hostres.make_bridge(cfg["bridge"], cfg["node_ip"], cfg["pod_prefix"])
        _log("starting containerd")
        containerd = _spawn(cfg["containerd"]["argv"], cfg["containerd"]["log"], env)
        _wait_socket(cfg["containerd"]["socket"], containerd, alive_fd, 60)
        for image in cfg["images"]:
            subprocess.run(
                [cfg["ctr"], "--address", cfg["containerd"]["socket"], "--namespace", "k8s.io",
                 "images", "import", "--snapshotter", cfg["snapshotter"], image],
                check=True, capture_output=True, env=env,
            )
        _log(f"imported {len(cfg['images'])} images; starting the kubelet")
        kubelet = _spawn(cfg["kubelet"]["argv"], cfg["kubelet"]["log"],
                         dict(env, PATH=cfg["kubelet"].get("path", env["PATH"])))
        while not _starter_gone(alive_fd, _TICK):
            for name, proc in (("containerd", containerd), ("kubelet", kubelet)):
                if proc.poll() is not None:
                    _log(f"{name} exited ({proc.returncode}); stopping the node")
                    code = 1
                    raise _Stop()
            with contextlib.suppress(ChildProcessError):  # orphans re-parented to us
                while os.waitpid(-1, os.WNOHANG)[0] > 0:
                    pass
        _log("the starter closed the pipe; stopping the node")
    except _Stop:
        pass
    except subprocess.CalledProcessError as e:
        _log(f"{e.cmd[0]} failed ({e.returncode}): {e.stderr.decode(errors='replace')}")
        code = 1
    except Exception as e:
        _log(f"node start failed: {e!r}")
        code = 1
    finally:
        # Nothing may cut the clean-up short: a second Ctrl-C or SIGTERM waits until after.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        _stop(kubelet, "kubelet")
        _stop(containerd, "containerd")
        _kill_the_rest()
        hostres.release(cfg["bridge"], cfg["cgroup_root"], cfg["sysctls"])
        _log("node stopped")
    return code


def main(argv: List[str]) -> int:
    if len(argv) != 1:
        print("usage: nodeinit.py CONFIG.json", file=sys.stderr)
        return 2
    if os.getpid() != 1:
        # Its clean-up signals every process of its PID namespace: only ever as PID 1.
        print("nodeinit runs only as PID 1 of the node's own PID namespace", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        return run(json.load(f))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
