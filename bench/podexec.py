"""Workload 7: exec round trip, ``true`` and ``echo`` in a running pod, one exec per call.

Each run is ``EXECS`` execs in a row; the value is the time per exec. Every client opens
a new WebSocket per exec, as each API requires: kubesync's ``Api.exec``, the official
client's ``kubernetes.stream.stream`` on ``connect_get_namespaced_pod_exec``, kr8s's
synchronous ``Pod.exec``.
"""

from __future__ import annotations

from typing import Any, Callable, List

from bench import peers, podsetup
from bench.env import Env
from bench.measure import LOWER, Variant, WorkloadResult, run_variants, timed

NAME = "exec"
EXECS = 10
KUBESYNC = "kubesync"


def _repeat(one: Callable[[], Any]) -> Callable[[], float]:
    def run() -> float:
        return timed(lambda: [one() for _ in range(EXECS)]) / EXECS
    return run


def _expect(out: Any, want: bytes) -> None:
    got = out if isinstance(out, bytes) else str(out).encode()
    if got != want:
        raise RuntimeError(f"exec printed {got!r}, not {want!r}")


def variants(env: Env) -> List[Variant]:
    ns = podsetup.ensure_pod(env)
    from kubesync import Api
    from kubesync.models.core_v1 import Pod

    client = env.kubesync_client()
    pods = Api(client, Pod, namespace=ns)
    out = [
        Variant(f"{KUBESYNC} true", _repeat(lambda: pods.exec(podsetup.POD, ["true"]))),
        Variant(f"{KUBESYNC} echo", _repeat(lambda: _expect(
            pods.exec(podsetup.POD, ["echo", "hello"]).stdout, b"hello\n")),
            close=client.close),
    ]
    try:
        from kubernetes.stream import stream

        core = podsetup.official_core(env)

        def official(command: List[str]) -> Any:
            return stream(core.connect_get_namespaced_pod_exec, podsetup.POD, ns,
                          command=command, stdout=True, stderr=True, stdin=False, tty=False)

        out += [Variant(f"{peers.OFFICIAL} true", _repeat(lambda: official(["true"]))),
                Variant(f"{peers.OFFICIAL} echo", _repeat(lambda: _expect(
                    official(["echo", "hello"]), b"hello\n")))]
    except ImportError:
        out += [Variant(f"{peers.OFFICIAL} true", na=f"kubernetes {peers.INSTALL_HINT}")]
    try:
        import kr8s
        from kr8s.objects import Pod as Kr8sPod

        api = kr8s.api(kubeconfig=env.kubeconfig)
        pod = Kr8sPod.get(podsetup.POD, namespace=ns, api=api)
        out += [Variant(f"{peers.KR8S} true", _repeat(lambda: pod.exec(["true"]))),
                Variant(f"{peers.KR8S} echo", _repeat(lambda: _expect(
                    pod.exec(["echo", "hello"]).stdout, b"hello\n")))]
    except ImportError:
        out += [Variant(f"{peers.KR8S} true", na=f"kr8s {peers.INSTALL_HINT}")]
    return out


def run(env: Env, runs: int) -> WorkloadResult:
    return WorkloadResult(
        name=NAME,
        title="exec round trip in a running pod (one WebSocket per exec)",
        unit="s",
        better=LOWER,
        baseline=f"{peers.OFFICIAL} true",
        measurements=run_variants(variants(env), runs),
        targets=[],
        notes=[f"Time per exec, {EXECS} execs in a row per run; echo's output is checked."],
    )
