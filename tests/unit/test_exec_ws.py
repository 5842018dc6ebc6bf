"""exec over WebSockets against a local, test-only WebSocket server (one named thread).

The server answers the upgrade like the API server (choosing a subprotocol from those
offered, or refusing with a Status), then plays a script of channel messages. Frames are
built and parsed with websocket-client's own ABNF tools; nothing waits by sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import socket
import ssl
import struct
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import pytest
from websocket import ABNF
from websocket._abnf import frame_buffer

from kubesync import Api, Client, Config, errors
from kubesync.client.podexec import V4, V5
from kubesync.config import Impersonation, TokenAuth
from kubesync.models.core_v1 import Pod

PKI = Path(__file__).resolve().parent.parent / "fixtures" / "kubeconfig" / "pki"
CA = (PKI / "ca.crt").read_bytes()
TOKEN = "s3cret-token-value"
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SUCCESS = {"metadata": {}, "status": "Success"}


def exit_status(code: int) -> Dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
            "message": f"command terminated with non-zero exit code: exit code {code}",
            "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}


class Peer:
    """The server's side of one WebSocket: channel messages out, client frames in."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self._frames = frame_buffer(self._recv, True)

    def _recv(self, n: int) -> bytes:
        data = self.sock.recv(n)
        if not data:
            raise ConnectionError("the client went away")
        return data

    def send(self, channel: int, data: bytes = b"") -> None:
        self.raw(ABNF(1, 0, 0, 0, ABNF.OPCODE_BINARY, 0, bytes((channel,)) + data).format())

    def status(self, doc: Dict[str, Any]) -> None:
        self.send(3, json.dumps(doc).encode())

    def raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.raw(ABNF(1, 0, 0, 0, ABNF.OPCODE_CLOSE, 0, struct.pack("!H", 1000)).format())

    def recv(self) -> Tuple[Optional[int], bytes]:
        """The next client message as (channel, payload); (None, b"") for a close."""
        while True:
            frame = self._frames.recv_frame()
            if frame.opcode == ABNF.OPCODE_PING:
                self.raw(ABNF(1, 0, 0, 0, ABNF.OPCODE_PONG, 0, frame.data).format())
                continue
            if frame.opcode == ABNF.OPCODE_CLOSE:
                return None, b""
            return frame.data[0], bytes(frame.data[1:])


Script = Callable[[Peer], None]


class FakeExecServer:
    """Accepts ``connections`` connections one after the other, answers each upgrade and
    runs ``script``; ``requests`` records (request line, headers) of each. Use as a
    context manager: the thread is joined."""

    def __init__(self, script: Script, *, offer: Sequence[str] = (V5, V4),
                 refuse: Optional[Tuple[int, Dict[str, Any]]] = None,
                 tls: Optional[ssl.SSLContext] = None, connections: int = 1):
        self.script, self.offer, self.refuse, self.tls = script, offer, refuse, tls
        self.connections = connections
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.listener.getsockname()[1]}"
        self.requests: List[Tuple[str, List[Tuple[str, str]]]] = []
        self.failure: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._serve, name="test-fake-exec-server",
                                       daemon=True)
        self.thread.start()

    def header(self, name: str, index: int = -1) -> List[str]:
        return [v for k, v in self.requests[index][1] if k.lower() == name.lower()]

    def _serve(self) -> None:
        for _ in range(self.connections):
            if not self._serve_one():
                return

    def _serve_one(self) -> bool:
        try:
            self.listener.settimeout(10)
            conn, _ = self.listener.accept()
        except OSError:
            return False
        try:
            conn.settimeout(10)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self._handle(conn)
        except (OSError, ssl.SSLError, ConnectionError):
            pass  # the client hung up, as tests of failures make it do
        except BaseException as exc:  # reported by __exit__
            self.failure = exc
        finally:
            conn.close()
        return True

    def _handle(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                return
            head += chunk
        line, *rest = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
        headers = [(k.strip(), v.strip()) for k, v in (h.split(":", 1) for h in rest)]
        self.requests.append((line, headers))
        if self.refuse is not None:
            code, doc = self.refuse
            body = json.dumps(doc).encode()
            conn.sendall(f"HTTP/1.1 {code} Refused\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            return
        key = self.header("Sec-WebSocket-Key")[0]
        offered = [p.strip() for p in self.header("Sec-WebSocket-Protocol")[0].split(",")]
        chosen = next((p for p in offered if p in self.offer), None)
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        answer = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n")
        if chosen:
            answer += f"Sec-WebSocket-Protocol: {chosen}\r\n"
        conn.sendall((answer + "\r\n").encode())
        self.script(Peer(conn))

    def __enter__(self) -> FakeExecServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.listener.close()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the fake server did not finish"
        if self.failure is not None:
            raise self.failure


def pods(server: FakeExecServer, *, timeout: Any = (5.0, 5.0), **config: Any) -> Api[Pod]:
    cfg = Config(server=server.url, auth=TokenAuth(TOKEN), **config)
    return Api(Client(cfg, timeout=timeout, retries=0), Pod, namespace="ns")


def prints(out: bytes = b"", err: bytes = b"", status: Optional[Dict[str, Any]] = None
           ) -> Script:
    def script(peer: Peer) -> None:
        if out:
            peer.send(1, out)
        if err:
            peer.send(2, err)
        peer.status(status or SUCCESS)
        peer.close()
    return script


def echo_stdin(peer: Peer) -> None:
    """Echo stdin to stdout until the v5 close of stdin, then exit 0."""
    while True:
        channel, data = peer.recv()
        if channel == 0:
            peer.send(1, data)
        elif channel == 255 and data == b"\x00":
            peer.status(SUCCESS)
            peer.close()
            return
        elif channel is None:
            return


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("kubesync-exec")]
    assert not left, f"reader threads still running: {left}"


# -- the happy paths -----------------------------------------------------------------


def test_v5_exec_returns_stdout_stderr_and_exit_code_apart() -> None:
    with FakeExecServer(prints(b"hello\n", b"warning\n")) as server:
        result = pods(server).exec("web", ["sh", "-c", "echo hello"])
    assert (result.stdout, result.stderr, result.returncode) == (b"hello\n", b"warning\n", 0)
    line = server.requests[0][0]
    assert line.startswith("GET /api/v1/namespaces/ns/pods/web/exec?")
    assert "command=sh&command=-c&command=echo+hello" in line
    assert "stdout=true" in line and "stderr=true" in line and "stdin=false" in line
    assert server.header("Sec-WebSocket-Protocol") == [f"{V5},{V4}"]


def test_a_server_offering_only_v4_is_used_with_v4() -> None:
    def script(peer: Peer) -> None:
        peer.send(1, b"old\n")
        peer.status(SUCCESS)
        peer.close()

    with FakeExecServer(script, offer=(V4,)) as server:
        with pods(server).exec_stream("web", ["cat"], stdin=True) as proc:
            assert proc.protocol == V4
            assert proc.stdout.read() == b"old\n"
            assert proc.wait(5) == 0
            assert proc.stdin is not None
            with pytest.raises(errors.UsageError, match="cannot half-close stdin"):
                proc.stdin.close()


def test_stdin_is_sent_and_closed_with_the_v5_close_signal() -> None:
    with FakeExecServer(echo_stdin) as server:
        result = pods(server).exec("web", ["cat"], stdin="round trip\n")
    assert result.stdout == b"round trip\n" and result.returncode == 0
    assert "stdin=true" in server.requests[0][0]


def test_a_stream_reads_lines_as_they_come_and_waits_for_the_exit_code() -> None:
    with FakeExecServer(echo_stdin) as server:
        with pods(server).exec_stream("web", ["cat"], stdin=True) as proc:
            assert proc.stdin is not None
            proc.stdin.write(b"one\n")
            assert proc.stdout.readline() == b"one\n"
            proc.stdin.write(b"two\nthree\n")
            proc.stdin.close()
            assert list(proc.stdout) == [b"two\n", b"three\n"]
            assert proc.wait(5) == 0 and proc.returncode == 0
            thread = proc._stream._thread
            assert thread.name.startswith("kubesync-exec-web-") and thread.daemon
        assert not thread.is_alive()


def test_resize_sends_width_and_height_on_channel_4() -> None:
    seen: List[bytes] = []

    def script(peer: Peer) -> None:
        channel, data = peer.recv()
        assert channel == 4
        seen.append(data)
        peer.status(SUCCESS)
        peer.close()

    with FakeExecServer(script) as server:
        with pods(server).exec_stream("web", ["sh"], stdin=True, tty=True) as proc:
            proc.resize(80, 24)
            assert proc.wait(5) == 0
    assert json.loads(seen[0]) == {"Width": 80, "Height": 24}
    assert "tty=true" in server.requests[0][0] and "stderr=false" in server.requests[0][0]


# -- exit codes ---------------------------------------------------------------------


def test_a_non_zero_exit_code_comes_from_the_error_channel() -> None:
    with FakeExecServer(prints(b"", b"no such file\n", exit_status(3))) as server:
        result = pods(server).exec("web", ["ls", "/nope"])
    assert result.returncode == 3 and result.stderr == b"no such file\n"


def test_check_raises_exec_error_with_code_stderr_and_command() -> None:
    with FakeExecServer(prints(b"", b"no such file\n", exit_status(2))) as server:
        with pytest.raises(errors.ExecError) as info:
            pods(server).exec("web", ["ls", "/nope"], check=True)
    err = info.value
    assert (err.returncode, err.stderr, err.command) == (2, b"no such file\n", ("ls", "/nope"))
    assert "exited with 2" in str(err) and "no such file" in str(err)


def test_a_command_that_cannot_run_raises_exec_error_without_a_code() -> None:
    failure = {"status": "Failure", "reason": "InternalError", "code": 500,
               "message": 'exec: "nope": executable file not found in $PATH'}
    with FakeExecServer(prints(status=failure)) as server:
        with pytest.raises(errors.ExecError, match=r"could not be run.*not found") as info:
            pods(server).exec("web", ["nope"])
    assert info.value.returncode is None


# -- refusals and protocol errors -----------------------------------------------------


@pytest.mark.parametrize(("code", "reason", "cls"), [
    (403, "Forbidden", errors.Forbidden), (404, "NotFound", errors.NotFound)])
def test_a_refused_upgrade_raises_the_api_error_with_its_status(
        code: int, reason: str, cls: type) -> None:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
              "reason": reason, "message": f'pods "web" is {reason.lower()}'}

    def unused(peer: Peer) -> None:
        raise AssertionError("no upgrade expected")

    with FakeExecServer(unused, refuse=(code, status)) as server:
        with pytest.raises(cls) as info:
            pods(server).exec("web", ["true"])
    assert info.value.code == code and info.value.reason == reason
    assert info.value.message == f'pods "web" is {reason.lower()}'


def test_a_message_on_an_unknown_channel_is_a_protocol_error() -> None:
    def script(peer: Peer) -> None:
        peer.send(7, b"what")
        peer.recv()  # until the client hangs up

    with FakeExecServer(script) as server:
        with pytest.raises(errors.ProtocolError, match="channel 7"):
            pods(server).exec("web", ["true"])


def test_a_message_without_a_channel_byte_is_a_protocol_error() -> None:
    def script(peer: Peer) -> None:
        peer.raw(ABNF(1, 0, 0, 0, ABNF.OPCODE_BINARY, 0, b"").format())
        peer.recv()

    with FakeExecServer(script) as server:
        with pytest.raises(errors.ProtocolError, match="without a channel byte"):
            pods(server).exec("web", ["true"])


def test_a_truncated_frame_is_a_transport_error() -> None:
    def script(peer: Peer) -> None:
        peer.raw(bytes((0x82, 100)) + b"\x01" + b"x" * 9)  # 100 bytes announced, 10 sent
        peer.sock.shutdown(socket.SHUT_RDWR)

    with FakeExecServer(script) as server:
        with pytest.raises(errors.TransportError, match="closed mid-stream"):
            pods(server).exec("web", ["true"])


def test_a_stream_that_ends_without_an_exit_status_is_a_protocol_error() -> None:
    def script(peer: Peer) -> None:
        peer.send(1, b"partial")
        peer.close()

    with FakeExecServer(script) as server:
        with pytest.raises(errors.ProtocolError, match="without the command's exit status"):
            pods(server).exec("web", ["true"])


def test_a_server_that_stops_sending_ends_with_a_timeout_not_a_hang() -> None:
    release = threading.Event()

    def script(peer: Peer) -> None:
        peer.send(1, b"started\n")
        release.wait(10)  # silent: no data, no answer to pings

    with FakeExecServer(script) as server:
        try:
            with pods(server, timeout=(2.0, 0.4)).exec_stream("web", ["sleep", "1d"]) as proc:
                assert proc.stdout.readline() == b"started\n"
                with pytest.raises(errors.RequestTimeout, match="sent nothing"):
                    proc.stdout.read()
                with pytest.raises(errors.RequestTimeout):
                    proc.wait(5)
        finally:
            release.set()


# -- credentials and secrets ----------------------------------------------------------


def test_auth_and_impersonation_headers_are_sent_with_the_upgrade() -> None:
    imp = Impersonation(user="alice", groups=("dev", "ops"))
    with FakeExecServer(prints(b"ok")) as server:
        pods(server, impersonate=imp).exec("web", ["true"])
    assert server.header("Authorization") == [f"Bearer {TOKEN}"]
    assert server.header("Impersonate-User") == ["alice"]
    assert server.header("Impersonate-Group") == ["dev", "ops"]
    assert server.header("User-Agent")[0].startswith("kubesync/")


def test_the_websocket_trusts_exactly_the_kubeconfig_ca() -> None:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(PKI / "server.crt", PKI / "server.key")
    with FakeExecServer(prints(b"secure"), tls=tls) as server:
        assert pods(server, ca_pem=CA).exec("web", ["true"]).stdout == b"secure"
    with FakeExecServer(prints(b"never"), tls=tls) as server:
        with pytest.raises(errors.TLSError):
            pods(server).exec("web", ["true"])  # the system roots do not know our CA


def test_no_secret_in_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeExecServer(prints(b"", b"bad\n", exit_status(1))) as server:
        api = pods(server)
        with api.exec_stream("web", ["false"]) as proc:
            proc.wait(5)
            texts = [repr(proc), repr(proc.stdout), repr(proc._stream.ws), repr(api.client)]
    with FakeExecServer(prints(b"", b"bad\n", exit_status(1))) as server:
        with pytest.raises(errors.ExecError) as info:
            pods(server).exec("web", ["false"], check=True)
    texts += [str(info.value), repr(info.value), caplog.text]
    assert all(TOKEN not in t for t in texts)


def answer_pings_until_hung_up(peer: Peer) -> None:
    """Alive but quiet: pongs to every ping, no output, never an exit status."""
    while peer.recv()[0] is not None:
        pass


def test_timeout_bounds_a_command_that_never_ends_on_a_live_connection() -> None:
    with FakeExecServer(answer_pings_until_hung_up) as server:
        api = pods(server, timeout=(2.0, 0.4))  # pings every 0.1 s keep the stream alive
        with pytest.raises(errors.RequestTimeout, match=r"did not finish within 0\.8 s"):
            api.exec("web", ["sleep", "1d"], timeout=0.8)


def test_close_from_another_thread_ends_a_blocked_read_and_joins_the_reader() -> None:
    reads: List[bytes] = []
    with FakeExecServer(answer_pings_until_hung_up) as server:
        proc = pods(server).exec_stream("web", ["sleep", "1d"])
        reader = threading.Thread(target=lambda: reads.append(proc.stdout.read()),
                                  name="test-blocked-reader")
        reader.start()
        proc.close()
        reader.join(timeout=5)
        assert not reader.is_alive() and reads == [b""]
        assert not proc._stream._thread.is_alive()
        with pytest.raises(errors.UsageError, match="closed before the command ended"):
            proc.wait(1)


def test_stdin_for_a_command_that_exits_without_reading_it_is_no_error() -> None:
    def script(peer: Peer) -> None:
        prints(b"done\n")(peer)
        answer_pings_until_hung_up(peer)  # a close with unread input would reset the TCP

    with FakeExecServer(script) as server:
        result = pods(server).exec("web", ["true"], stdin=b"x" * (1 << 20))
    assert (result.stdout, result.returncode) == (b"done\n", 0)


def test_a_stream_opened_before_a_fork_refuses_in_the_child_and_lives_on_in_the_parent(
) -> None:
    from tests.unit.test_fork import in_child

    with FakeExecServer(echo_stdin) as server:
        with pods(server).exec_stream("web", ["cat"], stdin=True) as proc:
            assert proc.stdin is not None
            proc.stdin.write(b"one\n")
            assert proc.stdout.readline() == b"one\n"

            def child() -> None:  # every call raises at once, naming why: none waits
                with pytest.raises(errors.UsageError, match=r"before os\.fork"):
                    proc.stdout.read()
                with pytest.raises(errors.UsageError, match=r"before os\.fork"):
                    proc.wait(30)
                assert proc.stdin is not None
                with pytest.raises(errors.UsageError, match=r"before os\.fork"):
                    proc.stdin.write(b"from the child\n")
                proc.close()  # drops the child's copy only

            in_child(child, timeout=20)
            proc.stdin.write(b"two\n")  # the parent's session was never touched
            assert proc.stdout.readline() == b"two\n"
            proc.stdin.close()
            assert proc.wait(5) == 0
