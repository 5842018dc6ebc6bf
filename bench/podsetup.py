"""The pod the exec and port-forward workloads talk to: busybox serving a file over HTTP.

Made once per run (the first of the two workloads to need it) in its own namespace, and
deleted when the run ends. Needs a cluster with a node (``python -m bench`` starts one
when these workloads are asked for).
"""

from __future__ import annotations

import http.client
import time
from typing import Any, Optional

from bench.env import Env

NAMESPACE = "bench-pods"
POD = "bench-web"
HTTP_PORT = 8080
#: What one port-forward run moves through one connection.
PAYLOAD = 20 * 1024 * 1024
SCRIPT = (f"mkdir -p /www && head -c {PAYLOAD} /dev/zero > /www/zero && "
          f"exec httpd -f -p {HTTP_PORT} -h /www")

_ready: Optional[str] = None


def ensure_pod(env: Env) -> str:
    """The namespace of a running pod whose httpd answers (made on first call)."""
    global _ready
    if _ready is not None:
        return _ready
    from kubesync import Api, errors
    from kubesync.models.core_v1 import Container, Namespace, Pod, PodSpec
    from kubesync.models.meta_v1 import ObjectMeta
    from kubesync.runtime.conditions import is_pod_running
    from kubesync.runtime.wait import await_condition
    from kubesync.testing import TEST_IMAGE

    client = env.kubesync_client()
    try:
        Api(client, Namespace).create(Namespace(metadata=ObjectMeta(name=NAMESPACE)))
    except errors.AlreadyExists:
        pass
    pods = Api(client, Pod, namespace=NAMESPACE)
    pod = Pod(metadata=ObjectMeta(name=POD), spec=PodSpec(
        termination_grace_period_seconds=1,
        containers=[Container(name="main", image=TEST_IMAGE, command=["sh", "-c", SCRIPT])]))
    deadline = time.monotonic() + 60
    while True:  # refused until the namespace's default ServiceAccount exists
        try:
            pods.create(pod)
            break
        except errors.AlreadyExists:
            break
        except errors.Forbidden:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    await_condition(pods, POD, is_pod_running(), timeout=120)
    with pods.port_forward(POD, HTTP_PORT) as pf:
        while not _answers(pf.local_port):  # running is not listening yet
            if time.monotonic() > deadline + 60:
                raise RuntimeError("httpd in the bench pod never answered")
            time.sleep(0.2)
    _ready = NAMESPACE
    return NAMESPACE


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("HEAD", "/zero")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def request_bytes() -> bytes:
    """The HTTP request every variant sends for the payload (HTTP/1.0: the server closes)."""
    return b"GET /zero HTTP/1.0\r\nHost: pod\r\n\r\n"


def check_response(total: int) -> None:
    """A run's bytes must be the payload plus a response head, or the run is wrong."""
    if not PAYLOAD < total < PAYLOAD + 1024:
        raise RuntimeError(f"got {total} bytes, expected {PAYLOAD} and a head")


def official_core(env: Env) -> Any:
    import kubernetes

    api_client = kubernetes.config.new_client_from_config(config_file=env.kubeconfig)
    return kubernetes.client.CoreV1Api(api_client)


def delete(env: Env) -> None:
    """Delete the pod's namespace (when a run made it)."""
    global _ready
    if _ready is None:
        return
    with env.kubesync_client() as client:
        client.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}")
    _ready = None
