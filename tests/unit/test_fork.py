"""Forked children against a real local TLS server: own connections, a parent whose
connections and watch survive the child, stores that restart or refuse in the child, and
TLS errors on open connections told apart from handshake failures (and retried)."""

from __future__ import annotations

import json
import os
import queue
import select
import signal
import socket
import ssl
import threading
import time
import traceback
from typing import Callable, Dict, Iterator, List, Optional, Set

import pytest

from kubesync import Api, Client, Config, errors
from kubesync.client import RetryPolicy
from kubesync.models.core_v1 import ConfigMap
from kubesync.runtime.reflector import start_reflector
from kubesync.runtime.store import ForkedStoreError, Store, StoreStopped
from tests.helpers import eventually
from tests.unit.test_client_local import CA, LocalServer, RecordingHandler, server_tls

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

CMS = "/api/v1/namespaces/ns/configmaps"


def in_child(body: Callable[[], None], timeout: float = 30.0) -> None:
    """Run ``body`` in a forked child; its failure (with the child's traceback) fails here."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        os.close(read_end)
        status = 0
        try:
            body()
        except BaseException:
            os.write(write_end, traceback.format_exc().encode())
            status = 1
        os._exit(status)
    os.close(write_end)
    chunks: List[bytes] = []
    deadline = time.monotonic() + timeout
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while True:  # the pipe ends when the child exits
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise AssertionError(f"the child did not finish within {timeout}s")
            chunk = pipe.read(65536)
            if not chunk:
                break
            chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    report = b"".join(chunks).decode()
    assert os.waitstatus_to_exitcode(status) == 0, f"the child failed:\n{report}"


def cm(name: str, rv: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "ns", "resourceVersion": rv}}


class ConfigMapServer:
    """LIST answers ``items``; each WATCH stays open and sends what ``push`` queues."""

    def __init__(self) -> None:
        self.items: List[dict] = []
        self.lists = 0
        self.watches: List[queue.Queue[Optional[bytes]]] = []
        self.lock = threading.Lock()
        self.server = LocalServer(server_tls(), self.respond)

    def respond(self, h: RecordingHandler) -> None:
        if "watch=" not in h.path:
            with self.lock:
                self.lists += 1
                items = list(self.items)
            h.send_json({"apiVersion": "v1", "kind": "ConfigMapList",
                         "metadata": {"resourceVersion": "10"}, "items": items})
            return
        lines: queue.Queue[Optional[bytes]] = queue.Queue()
        with self.lock:
            self.watches.append(lines)
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        h.wfile.flush()
        while True:
            line = lines.get(timeout=60)
            if line is None:
                break
            h.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            h.wfile.flush()
        h.close_connection = True

    def push(self, watch: int, etype: str, obj: dict) -> None:
        self.watches[watch].put(json.dumps({"type": etype, "object": obj}).encode() + b"\n")

    def stop(self) -> None:
        with self.lock:
            for w in self.watches:
                w.put(None)
        self.server.stop()


@pytest.fixture
def cms() -> Iterator[ConfigMapServer]:
    s = ConfigMapServer()
    yield s
    s.stop()


@pytest.fixture
def tls_server() -> Iterator[LocalServer]:
    s = LocalServer(server_tls())
    yield s
    s.stop()


def test_a_forked_child_opens_its_own_connection_and_the_parents_keeps_working(
    tls_server: LocalServer,
) -> None:
    client = Client(Config(server=tls_server.url, ca_pem=CA), retries=0)
    client.request("GET", "/before")  # the parent now holds a pooled TLS connection

    def child() -> None:
        for _ in range(3):
            assert client.request("GET", "/child")["path"] == "/child"
        client.close()  # must not close the parent's connection under it

    in_child(child)
    for _ in range(3):
        assert client.request("GET", "/after")["path"] == "/after"
    ports: Dict[str, Set[int]] = {r["path"]: set() for r in tls_server.requests}
    for r in tls_server.requests:
        ports[r["path"]].add(r["port"])
    assert ports["/before"] == ports["/after"]  # the parent's connection lived on, unshared
    assert not ports["/child"] & ports["/before"]  # the child never wrote to it
    client.close()


def test_store_stop_in_a_child_leaves_the_parents_watch_running(cms: ConfigMapServer) -> None:
    client = Client(Config(server=cms.server.url, ca_pem=CA), retries=0)
    store: Store[ConfigMap] = start_reflector(Api(client, ConfigMap, namespace="ns"))
    assert store.wait_until_ready(10)
    eventually(lambda: len(cms.watches) == 1, 10, "the parent's watch is open")

    in_child(store.stop)

    cms.push(0, "ADDED", cm("late", "11"))  # on the parent's one and only watch
    eventually(lambda: store.get("late", "ns") is not None, 10, "the parent sees the event")
    assert len(cms.watches) == 1  # no reconnect: the child did not break the stream
    store.stop()
    client.close()


def test_a_reflector_store_restarts_in_the_child_and_is_not_ready_before_its_own_list(
    cms: ConfigMapServer,
) -> None:
    client = Client(Config(server=cms.server.url, ca_pem=CA), retries=0)
    store: Store[ConfigMap] = start_reflector(Api(client, ConfigMap, namespace="ns"))
    assert store.wait_until_ready(10)
    cms.items.append(cm("new", "12"))  # only a fresh list shows it

    def child() -> None:
        assert store.get("new", "ns") is None  # the parent's view, and it says so:
        assert not store.is_ready
        assert store.wait_until_ready(10)
        assert store.get("new", "ns") is not None
        store.stop()

    in_child(child)
    assert cms.lists >= 2  # the parent's list and the child's own (plus any relists)
    assert store.is_ready and store.get("new", "ns") is None  # the parent is untouched
    store.stop()
    client.close()


def test_a_controller_store_in_a_child_refuses_with_a_clear_error(cms: ConfigMapServer) -> None:
    from kubesync.runtime.controller import Controller

    client = Client(Config(server=cms.server.url, ca_pem=CA), retries=0)
    ctl: Controller[ConfigMap] = Controller(Api(client, ConfigMap, namespace="ns"))
    ctl.start(lambda obj, ctx: None)
    assert ctl.store.wait_until_ready(10)

    def child() -> None:
        assert not ctl.store.is_ready
        with pytest.raises(StoreStopped, match="parent process") as caught:
            ctl.store.wait_until_ready(1)
        assert isinstance(caught.value.__cause__, ForkedStoreError)

    in_child(child)
    assert ctl.store.is_ready
    ctl.stop(5)
    client.close()


# -- TLS errors on an open connection -------------------------------------------------------


def _garble_first_answer(served: List[int]) -> Callable[[RecordingHandler], None]:
    def respond(h: RecordingHandler) -> None:
        served.append(h.client_address[1])
        if len(served) == 1:  # bytes outside TLS: the client's record layer breaks
            assert isinstance(h.connection, ssl.SSLSocket)
            raw = socket.socket(fileno=os.dup(h.connection.fileno()))
            raw.sendall(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)
            raw.close()
            h.close_connection = True
            return
        h.send_json({"kind": "Status", "path": h.path})

    return respond


def test_a_tls_error_on_an_open_connection_is_not_a_handshake_failure() -> None:
    served: List[int] = []
    server = LocalServer(server_tls(), _garble_first_answer(served))
    try:
        client = Client(Config(server=server.url, ca_pem=CA), retries=0)
        with pytest.raises(errors.TransportError) as caught:
            client.request("GET", "/version")
        assert not isinstance(caught.value, errors.TLSError)
        assert "handshake" not in str(caught.value)
        assert "TLS error on an open connection" in str(caught.value)
        client.close()
    finally:
        server.stop()


def test_a_read_that_hit_a_tls_error_is_retried_on_a_new_connection() -> None:
    served: List[int] = []
    server = LocalServer(server_tls(), _garble_first_answer(served))
    try:
        sleeps: List[float] = []
        client = Client(Config(server=server.url, ca_pem=CA),
                        retries=RetryPolicy(retries=2, sleep=sleeps.append))
        assert client.request("GET", "/version")["path"] == "/version"
        assert len(served) == 2 and served[0] != served[1]  # a second connection
        client.close()
    finally:
        server.stop()


def test_a_forked_child_handshakes_on_its_own_connection_with_the_inherited_context(
    tls_server: LocalServer,
) -> None:
    # No handshake of the parent's is under way at a fork (core/forkgate.py), so the
    # context's OpenSSL locks are free in the child; building a new context there could
    # hang on a global OpenSSL lock of a thread that is not ours (seen under gunicorn).
    client = Client(Config(server=tls_server.url, ca_pem=CA), retries=0)
    client.request("GET", "/before")
    inherited = client._transport.ssl_context

    def child() -> None:
        assert client._transport.ssl_context is inherited
        assert client.request("GET", "/child")["path"] == "/child"

    in_child(child)
    assert client.request("GET", "/after")["path"] == "/after"
    client.close()


def test_a_bad_certificate_is_still_a_handshake_failure(tls_server: LocalServer) -> None:
    client = Client(Config(server=tls_server.url), retries=0)  # no CA: untrusted
    with pytest.raises(errors.TLSError, match="TLS handshake failed"):
        client.request("GET", "/version")
    client.close()

