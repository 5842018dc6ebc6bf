"""port-forward on the local cluster's real node: busybox httpd in a pod, many concurrent
requests, a port with nothing listening, RBAC, and no thread left behind."""

from __future__ import annotations

import http.client
import logging
import secrets
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, Tuple

import pytest

from kubesync import Api, Client, Config, errors
from kubesync.models.core_v1 import Container, Pod, PodSpec
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.runtime.conditions import is_pod_running
from kubesync.runtime.wait import await_condition
from kubesync.testing import TEST_IMAGE
from tests.helpers import create_when_admitted, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.kube_node]
RUN_TIMEOUT = 90
POD = "web"
HTTP_PORT = 8080
FILES = 20
# Each file's body is its name repeated: a mixed-up response cannot pass as right.
SCRIPT = (
    "mkdir -p /www && "
    f"for i in $(seq 1 {FILES}); do yes file-$i | head -c 50000 > /www/f$i; done && "
    f"exec httpd -f -p {HTTP_PORT} -h /www"
)


def body(i: int) -> bytes:
    return (b"file-%d\n" % i * 50000)[:50000]


@pytest.fixture(scope="module")
def web(kube_client: Client) -> Iterator[Tuple[Api[Pod], str]]:
    """One pod serving /www over HTTP on 8080 (busybox httpd)."""
    namespace = f"kst-pf-{secrets.token_hex(3)}"
    kube_client.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    pods = Api(kube_client, Pod, namespace=namespace)
    pod = Pod(metadata=ObjectMeta(name=POD), spec=PodSpec(
        termination_grace_period_seconds=1,
        containers=[Container(name="main", image=TEST_IMAGE, command=["sh", "-c", SCRIPT])]))


    try:
        create_when_admitted(pods, pod)
        await_condition(pods, POD, is_pod_running(), timeout=RUN_TIMEOUT)
        with pods.port_forward(POD, HTTP_PORT) as pf:
            # running is not listening yet: wait until httpd answers
            eventually(lambda: _get(pf.local_port, "/f1")[0] == 200, timeout=30,
                       what="httpd answers through the port-forward")
        yield pods, namespace
    finally:
        kube_client.request("DELETE", f"/api/v1/namespaces/{namespace}")


def _get(port: int, path: str) -> Tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


def _forward_threads() -> list:
    return [t.name for t in threading.enumerate() if t.name.startswith("kubesync-port-forward")]


def test_twenty_concurrent_requests_through_the_local_port_all_arrive_intact(
        web: Tuple[Api[Pod], str]) -> None:
    pods, _ = web
    with pods.port_forward(POD, HTTP_PORT) as pf:
        assert pf.address == "127.0.0.1" and pf.local_port > 0
        gate = threading.Barrier(FILES, timeout=30)

        def fetch(i: int) -> Tuple[int, bytes]:
            gate.wait()  # all twenty connections open at once
            return _get(pf.local_port, f"/f{i}")

        with ThreadPoolExecutor(FILES, thread_name_prefix="test-http") as pool:
            results = list(pool.map(fetch, range(1, FILES + 1)))
    for i, (status, data) in enumerate(results, start=1):
        assert status == 200 and data == body(i), f"/f{i}: {status}, {len(data)} bytes"
    assert not _forward_threads()


def test_a_port_with_nothing_listening_fails_that_connection_only(
        web: Tuple[Api[Pod], str], caplog: pytest.LogCaptureFixture) -> None:
    pods, _ = web
    caplog.set_level(logging.WARNING, logger="kubesync.client")
    with pytest.raises(errors.PortForwardError) as info:
        with pods.port_forward_stream(POD, 9999) as stream:
            stream.sendall(b"GET / HTTP/1.0\r\n\r\n")
            while stream.recv(4096):
                pass
    assert info.value.port == 9999 and "9999" in info.value.message
    with pods.port_forward(POD, 9999) as bad, pods.port_forward(POD, HTTP_PORT) as good:
        with socket.create_connection(("127.0.0.1", bad.local_port), timeout=30) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert sock.recv(4096) == b""  # closed: the pod's side refused
        assert _get(good.local_port, "/f2") == (200, body(2))
        # and the failed listener still takes connections
        with socket.create_connection(("127.0.0.1", bad.local_port), timeout=30) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert sock.recv(4096) == b""
    assert "port-forward to port 9999" in caplog.text
    assert not _forward_threads()


def test_a_stream_speaks_http_to_the_pod(web: Tuple[Api[Pod], str]) -> None:
    pods, _ = web
    with pods.port_forward_stream(POD, HTTP_PORT) as stream:
        stream.sendall(b"GET /f3 HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = stream.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0]
    assert rest == body(3)
    assert stream.error is None


def test_a_user_without_create_on_pods_portforward_is_forbidden(
        web: Tuple[Api[Pod], str], kube_cluster: Any) -> None:
    _, namespace = web
    config = Config.from_kubeconfig(kube_cluster.kubeconfig_path, context="nobody")
    with Client(config) as client, pytest.raises(errors.Forbidden) as info:
        Api(client, Pod, namespace=namespace).port_forward_stream(POD, HTTP_PORT)
    assert info.value.code == 403 and "pods/portforward" in info.value.message
