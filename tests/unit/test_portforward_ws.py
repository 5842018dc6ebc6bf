"""port-forward over WebSockets against the local test WebSocket server of the exec tests:
the port prefix of each channel, the error channel, protocol errors, the listener."""

from __future__ import annotations

import logging
import socket
import struct
import threading
from typing import Any, Iterator, List

import pytest

from kubesync import Api, Client, Config, errors
from kubesync.client.portforward import ERROR_TEXT_LIMIT, SUBPROTOCOLS
from kubesync.models.core_v1 import Pod
from tests.unit.test_exec_ws import TOKEN, FakeExecServer, Peer, Script, pods

PORT = 8080
REFUSED = (f"error forwarding port {PORT} to pod abc, uid : failed to connect to "
           f"localhost:{PORT} inside namespace: connection refused")


def prefix(port: int = PORT) -> bytes:
    return struct.pack("<H", port)


def forward(*, data_port: int = PORT, error_port: int = PORT) -> Script:
    """The kubelet's side: both channels begin with the port, then data is echoed upper-cased
    until the client hangs up."""
    def script(peer: Peer) -> None:
        peer.send(0, prefix(data_port))
        peer.send(1, prefix(error_port))
        while True:
            channel, data = peer.recv()
            if channel is None:
                return
            assert channel == 0
            peer.send(0, data.upper())
    return script


def refuse_connection(peer: Peer) -> None:
    """Nothing listens on the port: error text, then the server closes."""
    peer.send(0, prefix())
    peer.send(1, prefix())
    peer.send(1, REFUSED.encode())
    peer.close()


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("kubesync-port-forward")]
    assert not left, f"port-forward threads still running: {left}"


# -- one stream ----------------------------------------------------------------------


def test_a_stream_strips_the_port_prefix_and_round_trips_data() -> None:
    with FakeExecServer(forward(), offer=SUBPROTOCOLS) as server:
        with pods(server).port_forward_stream("web", PORT) as stream:
            stream.sendall(b"hello")
            assert stream.recv(100) == b"HELLO"
            assert stream.send(b"x" * 100_000) == 100_000
            got = b""
            while len(got) < 100_000:
                got += stream.recv(1 << 20)
            assert got == b"X" * 100_000
            assert stream.protocol == "v4.channel.k8s.io"
            assert stream.thread_name.startswith(f"kubesync-port-forward-web-{PORT}-")
    line = server.requests[0][0]
    assert line.startswith(f"GET /api/v1/namespaces/ns/pods/web/portforward?ports={PORT} ")
    assert server.header("Sec-WebSocket-Protocol") == [",".join(SUBPROTOCOLS)]
    assert server.header("Authorization") == [f"Bearer {TOKEN}"]


def test_the_older_portforward_subprotocol_is_used_when_it_is_the_one_offered() -> None:
    with FakeExecServer(forward(), offer=("portforward.k8s.io",)) as server:
        with pods(server).port_forward_stream("web", PORT) as stream:
            stream.sendall(b"old")
            assert (stream.protocol, stream.recv(10)) == ("portforward.k8s.io", b"OLD")


def test_a_port_prefix_split_over_two_messages_is_joined() -> None:
    def script(peer: Peer) -> None:
        peer.send(0, prefix()[:1])
        peer.send(0, prefix()[1:] + b"first")
        peer.send(1, prefix())
        peer.close()

    with FakeExecServer(script, offer=SUBPROTOCOLS) as server:
        with pods(server).port_forward_stream("web", PORT) as stream:
            assert stream.recv(100) == b"first"
            assert stream.recv(100) == b""
            assert stream.error is None


@pytest.mark.parametrize(("data_port", "error_port", "channel"), [(81, PORT, 0), (PORT, 81, 1)])
def test_a_channel_beginning_with_another_port_is_a_protocol_error(
        data_port: int, error_port: int, channel: int) -> None:
    with FakeExecServer(forward(data_port=data_port, error_port=error_port),
                        offer=SUBPROTOCOLS) as server:
        with pods(server).port_forward_stream("web", PORT) as stream:
            with pytest.raises(errors.ProtocolError,
                               match=f"channel {channel} began with port 81, not {PORT}"):
                stream.recv(10)


def test_a_message_on_a_channel_beyond_the_ports_is_a_protocol_error() -> None:
    def script(peer: Peer) -> None:
        peer.send(0, prefix())
        peer.send(2, prefix())
        peer.recv()

    with FakeExecServer(script, offer=SUBPROTOCOLS) as server:
        with pods(server).port_forward_stream("web", PORT) as stream:
            with pytest.raises(errors.ProtocolError, match="channel 2"):
                stream.recv(10)


def test_error_channel_text_is_raised_by_recv_and_logged(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    with FakeExecServer(refuse_connection, offer=SUBPROTOCOLS) as server:
        with pods(server).port_forward_stream("web", PORT) as stream:
            with pytest.raises(errors.PortForwardError) as info:
                stream.recv(10)
    assert (info.value.pod, info.value.port, info.value.message) == ("web", PORT, REFUSED)
    assert f"port {PORT} of pod web failed: {REFUSED}" in str(info.value)
    assert REFUSED in caplog.text


def test_sending_after_the_pod_side_failed_raises_its_error() -> None:
    with FakeExecServer(refuse_connection, offer=SUBPROTOCOLS) as server:
        with pods(server).port_forward_stream("web", PORT) as stream:
            server.thread.join(10)  # the server has sent the error and closed
            assert stream._stream.ended.wait(10)
            with pytest.raises(errors.PortForwardError, match="connection refused"):
                stream.sendall(b"too late")


def test_error_text_beyond_its_limit_is_cut_off_not_buffered() -> None:
    def script(peer: Peer) -> None:
        peer.send(0, prefix())
        peer.send(1, prefix() + b"e" * 40_000)
        peer.send(1, b"e" * 40_000)
        peer.close()

    with FakeExecServer(script, offer=SUBPROTOCOLS) as server:
        with pods(server).port_forward_stream("web", PORT) as stream:
            with pytest.raises(errors.PortForwardError) as info:
                stream.recv(10)
    assert info.value.message == "e" * ERROR_TEXT_LIMIT


def test_a_silent_server_ends_the_stream_with_a_timeout_not_a_hang() -> None:
    release = threading.Event()

    def script(peer: Peer) -> None:
        peer.send(0, prefix())
        release.wait(10)  # no data and no pongs

    with FakeExecServer(script, offer=SUBPROTOCOLS) as server:
        try:
            with pods(server, timeout=(2.0, 0.4)).port_forward_stream("web", PORT) as stream:
                with pytest.raises(errors.RequestTimeout, match="sent nothing"):
                    stream.recv(10)
        finally:
            release.set()


def test_recv_with_a_timeout_raises_when_nothing_comes_and_the_stream_stays_usable() -> None:
    with FakeExecServer(forward(), offer=SUBPROTOCOLS) as server:
        with pods(server).port_forward_stream("web", PORT) as stream:
            with pytest.raises(errors.RequestTimeout, match=f"nothing came from port {PORT}"):
                stream.recv(10, timeout=0.1)
            stream.sendall(b"later")
            assert stream.recv(10, timeout=10) == b"LATER"


def test_a_refused_upgrade_raises_forbidden() -> None:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403,
              "reason": "Forbidden", "message": 'cannot create resource "pods/portforward"'}

    def unused(peer: Peer) -> None:
        raise AssertionError("no upgrade expected")

    with FakeExecServer(unused, refuse=(403, status), offer=SUBPROTOCOLS) as server:
        with pytest.raises(errors.Forbidden, match="pods/portforward"):
            pods(server).port_forward_stream("web", PORT)


@pytest.mark.parametrize("port", [0, 65536, -1, True])
def test_a_port_outside_1_to_65535_is_a_usage_error(port: int) -> None:
    # refused before any connection: the server address is never dialled
    with Client(Config(server="https://127.0.0.1:9"), retries=0) as client:
        api = Api(client, Pod, namespace="ns")
        with pytest.raises(errors.UsageError, match="TCP port number"):
            api.port_forward_stream("web", port)
        with pytest.raises(errors.UsageError, match="TCP port number"):
            api.port_forward("web", port)


# -- the listener --------------------------------------------------------------------


def test_a_refused_connection_is_closed_and_logged_and_the_next_one_works(
        caplog: pytest.LogCaptureFixture) -> None:
    scripts: List[Script] = [refuse_connection, forward()]

    def script(peer: Peer) -> None:
        scripts.pop(0)(peer)

    with FakeExecServer(script, offer=SUBPROTOCOLS, connections=2) as server:
        with pods(server).port_forward("web", PORT) as pf:
            assert (pf.address, pf.pod, pf.port) == ("127.0.0.1", "web", PORT)
            assert pf.thread_name.startswith(f"kubesync-port-forward-web-{PORT}-listener-")
            with socket.create_connection((pf.address, pf.local_port), timeout=10) as first:
                first.sendall(b"lost")
                assert recv_exactly(first, 1) == b""  # closed by us: the pod's side failed
            with socket.create_connection((pf.address, pf.local_port), timeout=10) as second:
                second.sendall(b"still here")
                assert recv_exactly(second, 10) == b"STILL HERE"
    assert REFUSED in caplog.text
    assert not scripts


def test_stop_ends_open_connections_and_joins_every_thread() -> None:
    with FakeExecServer(forward(), offer=SUBPROTOCOLS) as server:
        pf = pods(server).port_forward("web", PORT)
        client = socket.create_connection(("127.0.0.1", pf.local_port), timeout=10)
        client.sendall(b"open")
        assert recv_exactly(client, 4) == b"OPEN"
        assert pf.connections == 1
        names = [t.name for t in threading.enumerate()
                 if t.name.startswith("kubesync-port-forward")]
        assert len(names) == 4, names  # listener, up, down, the WebSocket's reader
        pf.stop()
        assert recv_exactly(client, 1) == b""
        client.close()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", pf.local_port), timeout=10)
        pf.stop()  # twice is fine


def test_a_local_client_that_hangs_up_ends_its_websocket() -> None:
    with FakeExecServer(forward(), offer=SUBPROTOCOLS) as server:
        with pods(server).port_forward("web", PORT) as pf:
            with socket.create_connection(("127.0.0.1", pf.local_port), timeout=10) as c:
                c.sendall(b"bye")
                assert recv_exactly(c, 3) == b"BYE"
            # the server's script returns only once the WebSocket is closed
            server.thread.join(10)
            assert not server.thread.is_alive(), "the WebSocket outlived its connection"
            assert pf.connections == 0 or _eventually_no_connections(pf)


def _eventually_no_connections(pf: Any) -> bool:
    for conn in list(pf._connections):
        conn._up.join(10)  # the thread that ends a connection last
    return pf.connections == 0


def test_no_token_in_reprs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeExecServer(refuse_connection, offer=SUBPROTOCOLS) as server:
        with pods(server).port_forward_stream("web", PORT) as stream:
            with pytest.raises(errors.PortForwardError) as info:
                stream.recv(1)
            texts = [repr(stream), str(info.value), caplog.text]
    assert all(TOKEN not in t for t in texts)


def test_a_forward_started_before_a_fork_keeps_forwarding_in_the_parent_after_the_childs_stop(
) -> None:
    from tests.unit.test_fork import in_child

    with FakeExecServer(forward(), offer=SUBPROTOCOLS, connections=2) as server:
        with pods(server).port_forward("web", PORT) as pf:
            with socket.create_connection((pf.address, pf.local_port), timeout=10) as c:
                c.sendall(b"before")
                assert recv_exactly(c, 6) == b"BEFORE"

                def child() -> None:
                    pf.stop()  # returns at once: nothing of it runs in the child
                    assert "stopped" in repr(pf)

                in_child(child, timeout=20)
                c.sendall(b"after")  # the open connection was not shut down under us
                assert recv_exactly(c, 5) == b"AFTER"
            with socket.create_connection((pf.address, pf.local_port), timeout=10) as c2:
                c2.sendall(b"new")  # and the listener still accepts
                assert recv_exactly(c2, 3) == b"NEW"
