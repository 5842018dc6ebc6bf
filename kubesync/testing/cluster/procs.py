"""Child processes of the local cluster: started, tied to our life, stopped, their logs."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO, Dict, List, Optional, Tuple


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> List[int]:
    """``n`` distinct free loopback ports (all held open until all are chosen)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_PR_SET_PDEATHSIG = 1
try:
    # Loaded here, not in the forked child, where loading a library can deadlock on a lock
    # another thread held at fork time.
    _LIBC: Optional[ctypes.CDLL] = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:
    _LIBC = None


def _death_signal(sig: int, parent: int) -> None:
    """Runs in the child before exec: the kernel sends ``sig`` when its parent goes away."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), sig)


class Proc:
    """One component: its command line, its process and its log file.

    ``death_signal`` is what the kernel sends it when the thread that started it dies
    (a killed test run): SIGTERM by default; SIGKILL for a process that ignores SIGTERM.
    """

    def __init__(
        self,
        name: str,
        argv: List[str],
        log_path: Path,
        *,
        env: Optional[Dict[str, str]] = None,
        death_signal: int = signal.SIGTERM,
        pass_fds: Tuple[int, ...] = (),
    ):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.death_signal = death_signal
        self.pass_fds = pass_fds
        self.popen: Optional[subprocess.Popen[bytes]] = None
        self._log: Optional[IO[bytes]] = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        sig, parent = self.death_signal, os.getpid()
        self.popen = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            preexec_fn=(
                (lambda: _death_signal(sig, parent)) if sys.platform.startswith("linux") else None
            ),
            close_fds=True,
            pass_fds=self.pass_fds,
            # Its own session: Ctrl-C and a signal to our process group reach only us, and
            # we stop the components in order.
            start_new_session=True,
        )

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 15.0, *, pid: Optional[int] = None) -> None:
        """SIGTERM (to ``pid`` if given: a child that does the real work), then SIGKILL."""
        p = self.popen
        if p is not None and p.poll() is None:
            try:
                os.kill(pid or p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 30) -> str:
        return tail(self.log_path, lines)


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
