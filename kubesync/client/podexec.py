"""Running commands in pods: ``exec`` and ``attach`` over the ``v5``/``v4.channel.k8s.io``
WebSocket protocols. ``Api.exec``/``Api.exec_stream``/``Api.attach`` call these.

Channels: 0 stdin, 1 stdout, 2 stderr, 3 error (the command's end, as a ``Status``), 4
resize (``{"Width": cols, "Height": rows}``), and in v5 255 close (its payload the channel
to close: stdin, so ``cat`` sees EOF). v4 (servers before Kubernetes 1.30) cannot
half-close stdin. See https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#get-connect-exec-pod-v1
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple, Type, Union

import attrs

from kubesync.client import fork
from kubesync.client.channels import PIPE_LIMIT, ChannelStream, Pipe, ReadStream
from kubesync.client.pods import require_pods
from kubesync.client.wstransport import FORKED
from kubesync.core import json
from kubesync.core.request import RequestBuilder
from kubesync.errors import (
    ExecError,
    KubeError,
    ProtocolError,
    RequestTimeout,
    Status,
    TransportError,
    UsageError,
)

if TYPE_CHECKING:
    from kubesync.client.client import Client

__all__ = ["ExecProcess", "ExecResult", "StdinWriter", "exec_command", "open_process"]

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
#: Offered newest first; the server picks the first it speaks.
SUBPROTOCOLS = (V5, V4)
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
# Stdin is sent in messages of at most this size (the API server relays each as a frame).
STDIN_CHUNK = 64 * 1024

Stdin = Union[bytes, str, None]


@attrs.define(frozen=True)
class ExecResult:
    """What a finished command left: its output (bytes) and exit code, as ``subprocess.run``."""

    stdout: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    stderr: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    returncode: int


def exit_code(status: Status) -> Optional[int]:
    """The exit code an error-channel ``Status`` reports; None if the command never ran."""
    if status.status == "Success":
        return 0
    if status.reason == "NonZeroExitCode":
        for cause in status.causes:
            if cause.reason == "ExitCode" and cause.message and cause.message.isdigit():
                return int(cause.message)
    return None


def exec_query(command: Sequence[str], *, container: Optional[str], stdin: bool, tty: bool,
               attach: bool = False) -> Dict[str, Any]:
    """The query of an exec (or, without ``command``, attach) call."""
    q: Dict[str, Any] = {"stdout": True, "stderr": not tty, "stdin": stdin, "tty": tty}
    if not attach:
        q["command"] = list(command)
    if container:
        q["container"] = container
    return q


class StdinWriter:
    """A command's standard input: ``write(data)`` and ``close()``."""

    def __init__(self, process: ExecProcess):
        self._process = process
        self.closed = False

    def write(self, data: Union[bytes, str]) -> int:
        """Send ``data`` (``str`` as UTF-8); the number of bytes sent."""
        if self.closed:
            raise UsageError("stdin is closed")
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        for start in range(0, len(raw), STDIN_CHUNK):
            self._process._stream.send(STDIN, raw[start:start + STDIN_CHUNK])
        return len(raw)

    def close(self) -> None:
        """End the input (the v5 close signal): a command reading it sees EOF.

        A v4 server (Kubernetes before 1.30) cannot half-close stdin: this raises
        ``UsageError``; close the whole process instead. With a TTY the runtime keeps
        the terminal open, so its reader sees no EOF: write ``b"\\x04"`` (Ctrl-D) at the
        start of a line instead, as at a terminal.
        """
        if self.closed:
            return
        if self._process.protocol != V5:
            raise UsageError(f"the server speaks {self._process.protocol}, which cannot "
                             "half-close stdin; close the process instead")
        self._process._stream.send(CLOSE, bytes((STDIN,)))
        self.closed = True


class ExecProcess:
    """A command running in a container, like ``subprocess.Popen`` with pipes.

    ``stdin`` (when asked for) has ``write``/``close``; ``stdout`` and ``stderr`` are
    ``ReadStream`` objects (with a TTY, stderr is merged into stdout and ``stderr`` stays
    empty). ``wait(timeout)`` gives the exit code; ``resize(cols, rows)`` sets a TTY's
    size; ``close()`` (or leaving the ``with`` block) ends the session and joins the reader
    thread. Output not read is buffered up to a limit per stream, then the server is held
    back: read stdout and stderr both (or use ``Api.exec``) when a command prints much to
    each. Thread-safe: one thread may write stdin while others read.
    """

    def __init__(self, client: Client, rb: RequestBuilder, name: str, *, subresource: str,
                 query: Dict[str, Any], command: Tuple[str, ...], stdin: bool, tty: bool,
                 timeout: Optional[float], collect: bool = False):
        self.command = command
        self.tty = tty
        self._lock = threading.Lock()
        self._status: Optional[Status] = None
        self._error: Optional[KubeError] = None
        self._closed = False
        limit = None if collect else PIPE_LIMIT
        self._out, self._err, self._status_pipe = Pipe(limit), Pipe(limit), Pipe(None)
        self.stdout = ReadStream(self._out, "stdout")
        self.stderr = ReadStream(self._err, "stderr")
        req = rb.connect(name, subresource, query)
        ws = client.send_websocket(req, subprotocols=SUBPROTOCOLS)
        self.protocol = ws.subprotocol
        self._url = ws.url  # set before the reader starts: its end may come at once
        self._what = f"the command {list(command)}" if command else f"the attach to {name}"
        self.stdin: Optional[StdinWriter] = StdinWriter(self) if stdin else None
        deadline = None if timeout is None else time.monotonic() + timeout
        self._stream = ChannelStream(
            ws, {STDOUT: self._out, STDERR: self._err, ERROR: self._status_pipe},
            name=f"{subresource}-{name}", on_end=self._ended, deadline=deadline,
            deadline_text=f"{self._what} did not finish within {timeout or 0:g} s")
        fork.register(self)

    def _after_fork_in_child(self) -> None:
        # The reader thread stayed in the parent (the stream ends its pipes): wait() then
        # raises in the child instead of waiting for that thread for ever.
        self._lock = threading.Lock()
        if self._status is None and self._error is None:
            self._error = UsageError(f"{FORKED} ({self._url})")

    # -- the reader thread's end ---------------------------------------------------------

    def _ended(self, error: Optional[KubeError]) -> None:
        status = self._decode_status()
        if status is not None and isinstance(error, TransportError) \
                and not isinstance(error, (ProtocolError, RequestTimeout)):
            error = None  # the connection broke after the command had ended: nothing lost
        if error is None and status is None and not self._closed:
            error = ProtocolError("the exec stream ended without the command's exit status",
                                  method="GET", url=self._url)
        with self._lock:
            self._status, self._error = status, error
        self._out.finish(error)
        self._err.finish(error)

    def _decode_status(self) -> Optional[Status]:
        self._status_pipe.finish()
        raw = self._status_pipe.read()
        if not raw:
            return None
        try:
            doc = json.loads(raw)
        except ValueError:
            return Status(status="Failure", message=raw.decode("utf-8", "replace"))
        return Status.from_dict(doc if isinstance(doc, dict) else {})

    # -- the process-like surface ------------------------------------------------------

    @property
    def returncode(self) -> Optional[int]:
        """The exit code once the command ended; None while it runs."""
        with self._lock:
            return None if self._status is None else exit_code(self._status)

    @property
    def status(self) -> Optional[Status]:
        """The server's ``Status`` for the command's end (None while it runs)."""
        with self._lock:
            return self._status

    def wait(self, timeout: Optional[float] = None) -> int:
        """Wait for the command to end and return its exit code.

        ``RequestTimeout`` if it is still running after ``timeout`` seconds (it keeps
        running); the stream's error if the stream failed; ``ExecError`` if the command
        could not be run at all (no such command, say).
        """
        if not self._stream.ended.wait(timeout):
            raise RequestTimeout(f"{self._what} is still running after {timeout:g} s",
                                 method="GET", url=self._url)
        with self._lock:
            status, error = self._status, self._error
        if error is not None:
            raise error
        if status is None:
            raise UsageError("the process was closed before the command ended")
        code = exit_code(status)
        if code is None:
            raise ExecError(f"the command {list(self.command)} could not be run: "
                            f"{status.message or status.reason}", command=self.command,
                            returncode=None, status=status)
        return code

    def resize(self, cols: int, rows: int) -> None:
        """Set the TTY's size (columns and rows), as a terminal window does.

        The size travels apart from stdin (its own stream on the server's side): input
        written just after a resize may reach the command before the new size does.
        """
        if not self.tty:
            raise UsageError("resize needs a TTY: exec_stream(..., tty=True)")
        self._stream.send(RESIZE, json.dumps({"Width": int(cols), "Height": int(rows)}))

    def close(self) -> None:
        """End the session: close the WebSocket and join the reader thread."""
        self._closed = True
        self._stream.close()

    def __enter__(self) -> ExecProcess:
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]], exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        self.close()

    def __repr__(self) -> str:
        code = self.returncode
        state = "running" if code is None else f"returncode={code}"
        return f"<ExecProcess {list(self.command)} {self.protocol} {state}>"


def _command(command: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    if isinstance(command, str):
        raise UsageError("command is a list of arguments, e.g. ['sh', '-c', 'echo hi']")
    args = tuple(command)
    if not args:
        raise UsageError("command is empty")
    return args


def open_process(client: Client, rb: RequestBuilder, name: str,
                 command: Optional[Union[str, Sequence[str]]], *,
                 container: Optional[str] = None, stdin: bool = False, tty: bool = False,
                 timeout: Optional[float] = None, collect: bool = False) -> ExecProcess:
    """Start ``command`` in pod ``name`` (or attach to its main process when None)."""
    require_pods(rb, "exec is" if command is not None else "attach is")
    args = _command(command) if command is not None else ()
    query = exec_query(args, container=container, stdin=stdin, tty=tty,
                       attach=command is None)
    return ExecProcess(client, rb, name, subresource="exec" if command is not None else "attach",
                       query=query, command=args, stdin=stdin, tty=tty, timeout=timeout,
                       collect=collect)


def exec_command(client: Client, rb: RequestBuilder, name: str,
                 command: Union[str, Sequence[str]], *, container: Optional[str] = None,
                 stdin: Stdin = None, tty: bool = False, timeout: Optional[float] = None,
                 check: bool = False) -> ExecResult:
    """Run ``command`` to its end and collect its output (see ``Api.exec``)."""
    with open_process(client, rb, name, command, container=container,
                      stdin=stdin is not None, tty=tty, timeout=timeout, collect=True) as proc:
        if proc.stdin is not None and stdin is not None:
            try:
                proc.stdin.write(stdin)
                if proc.protocol == V5:
                    proc.stdin.close()
            except TransportError:
                # The command ended without reading it all (as a broken pipe, which
                # subprocess's communicate() ignores too); a real failure shows in wait().
                pass
        code = proc.wait()
        out, err = proc.stdout.read(), proc.stderr.read()
    if check and code != 0:
        raise ExecError(f"the command {list(proc.command)} exited with {code}",
                        command=proc.command, returncode=code, stdout=out, stderr=err,
                        status=proc.status)
    return ExecResult(stdout=out, stderr=err, returncode=code)

