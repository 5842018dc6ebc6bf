"""Workload 8: port-forward throughput, 20 MB over one forwarded connection.

Each run fetches the pod's 20 MB file from busybox httpd through one connection and
reports MB/s (decimal megabytes). kubesync runs twice: its socket-like
``port_forward_stream`` and its local listener (``port_forward``, through a local TCP
socket, as kubectl's users connect). The official client: ``kubernetes.stream.portforward``
and its socket; kr8s: the synchronous ``Pod.portforward`` local port.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Callable, List

from bench import peers, podsetup
from bench.env import Env
from bench.measure import HIGHER, Variant, WorkloadResult, run_variants

NAME = "portforward"
KUBESYNC = "kubesync port_forward_stream"


def _rate(fetch: Callable[[], int]) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        total = fetch()
        took = time.perf_counter() - started
        podsetup.check_response(total)
        return total / took / 1e6
    return run


def _through_socket(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        return _drain(sock)


def _drain(sock: Any) -> int:
    sock.sendall(podsetup.request_bytes())
    total = 0
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return total
        total += len(chunk)


def variants(env: Env) -> List[Variant]:
    ns = podsetup.ensure_pod(env)
    from kubesync import Api
    from kubesync.models.core_v1 import Pod

    client = env.kubesync_client()
    pods = Api(client, Pod, namespace=ns)

    def stream_fetch() -> int:
        with pods.port_forward_stream(podsetup.POD, podsetup.HTTP_PORT) as stream:
            return _drain(stream)

    listener = pods.port_forward(podsetup.POD, podsetup.HTTP_PORT)

    def close_kubesync() -> None:
        listener.stop()
        client.close()

    out = [
        Variant(KUBESYNC, _rate(stream_fetch)),
        Variant("kubesync port_forward (local port)",
                _rate(lambda: _through_socket(listener.local_port)), close=close_kubesync),
    ]
    try:
        from kubernetes.stream import portforward

        core = podsetup.official_core(env)

        def official_fetch() -> int:
            pf = portforward(core.connect_get_namespaced_pod_portforward, podsetup.POD, ns,
                             ports=str(podsetup.HTTP_PORT))
            sock = pf.socket(podsetup.HTTP_PORT)
            sock.setblocking(True)
            try:
                return _drain(sock)
            finally:
                sock.close()

        out.append(Variant(peers.OFFICIAL, _rate(official_fetch)))
    except ImportError:
        out.append(Variant(peers.OFFICIAL, na=f"kubernetes {peers.INSTALL_HINT}"))
    try:
        import kr8s
        from kr8s.objects import Pod as Kr8sPod

        api = kr8s.api(kubeconfig=env.kubeconfig)
        pod = Kr8sPod.get(podsetup.POD, namespace=ns, api=api)

        def kr8s_fetch() -> int:
            with pod.portforward(podsetup.HTTP_PORT, local_port="auto") as port:
                return _through_socket(port)

        out.append(Variant(peers.KR8S, _rate(kr8s_fetch),
                           note="a local port per run (its context manager)"))
    except ImportError:
        out.append(Variant(peers.KR8S, na=f"kr8s {peers.INSTALL_HINT}"))
    return out


def run(env: Env, runs: int) -> WorkloadResult:
    return WorkloadResult(
        name=NAME,
        title="port-forward: 20 MB through one forwarded connection",
        unit="MB/s",
        better=HIGHER,
        baseline=peers.OFFICIAL,
        measurements=run_variants(variants(env), runs),
        targets=[],
        notes=["One HTTP/1.0 GET of a 20 MB file from busybox httpd in the pod; MB = 1e6 B."],
    )
