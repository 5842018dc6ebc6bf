"""exec on the local cluster's real node: output, exit codes, stdin, a TTY, 10 MB, RBAC."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, Iterator, Tuple

import pytest

from kubesync import Api, Client, Config, errors
from kubesync.client.podexec import V5
from kubesync.models.core_v1 import Container, Pod, PodSpec
from kubesync.models.meta_v1 import ObjectMeta
from kubesync.runtime.conditions import is_pod_running
from kubesync.runtime.wait import await_condition
from kubesync.testing import TEST_IMAGE
from tests.helpers import create_when_admitted

pytestmark = [pytest.mark.e2e, pytest.mark.kube_node]
#: A pod on a warm node runs within a few seconds; a cold first one imports and unpacks.
RUN_TIMEOUT = 90
POD = "shell"
TEN_MB = 10 * 1024 * 1024


@pytest.fixture(scope="module")
def shell(kube_client: Client) -> Iterator[Tuple[Api[Pod], str]]:
    """One running busybox pod for the whole module (each exec is a new process in it)."""
    namespace = f"kst-exec-{secrets.token_hex(3)}"
    kube_client.request("POST", "/api/v1/namespaces", body={
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    pods = Api(kube_client, Pod, namespace=namespace)
    pod = Pod(metadata=ObjectMeta(name=POD), spec=PodSpec(
        termination_grace_period_seconds=1,
        containers=[Container(name="main", image=TEST_IMAGE, command=["sleep", "3600"])]))


    try:
        create_when_admitted(pods, pod)
        await_condition(pods, POD, is_pod_running(), timeout=RUN_TIMEOUT)
        yield pods, namespace
    finally:
        kube_client.request("DELETE", f"/api/v1/namespaces/{namespace}")


def test_echo_exits_zero_with_its_output(shell: Tuple[Api[Pod], str]) -> None:
    pods, _ = shell
    result = pods.exec(POD, ["echo", "hello", "world"])
    assert (result.stdout, result.stderr, result.returncode) == (b"hello world\n", b"", 0)


def test_a_non_zero_exit_code_is_returned_and_check_raises(shell: Tuple[Api[Pod], str]) -> None:
    pods, _ = shell
    assert pods.exec(POD, ["sh", "-c", "exit 3"]).returncode == 3
    with pytest.raises(errors.ExecError) as info:
        pods.exec(POD, ["sh", "-c", "echo broken >&2; exit 7"], check=True)
    assert info.value.returncode == 7 and info.value.stderr == b"broken\n"


def test_stdout_and_stderr_are_kept_apart(shell: Tuple[Api[Pod], str]) -> None:
    pods, _ = shell
    result = pods.exec(POD, ["sh", "-c", "echo out; echo err >&2; echo out2"])
    assert (result.stdout, result.stderr) == (b"out\nout2\n", b"err\n")


def test_stdin_round_trips_through_cat_ended_by_closing_stdin(
        shell: Tuple[Api[Pod], str]) -> None:
    pods, _ = shell
    data = b"".join(b"line %d\n" % i for i in range(1000))
    assert pods.exec(POD, ["cat"], stdin=data).stdout == data
    with pods.exec_stream(POD, ["cat"], stdin=True) as proc:
        assert proc.protocol == V5 and proc.stdin is not None
        proc.stdin.write(b"first\n")
        assert proc.stdout.readline() == b"first\n"
        proc.stdin.write("second\n")
        proc.stdin.close()
        assert proc.stdout.read() == b"second\n"
        assert proc.wait(30) == 0


def test_a_tty_resize_is_seen_by_stty_size(shell: Tuple[Api[Pod], str]) -> None:
    pods, _ = shell
    # One "size=..." line per input line, also when stty fails: before the resize lands
    # the terminal is 0x0 and busybox's stty prints an error instead of a size.
    script = 'while read line; do echo "size=$(stty size 2>&1)"; done'
    with pods.exec_stream(POD, ["sh", "-c", script], stdin=True, tty=True, timeout=60) as proc:
        assert proc.stdin is not None
        # The resize and stdin reach the container by separate streams: a line sent
        # after the resize may still be read before it is applied. Ask until it shows.
        proc.resize(123, 45)
        seen = []
        for _ in range(100):
            proc.stdin.write(b"\n")
            line = proc.stdout.readline()  # the terminal's echo of the newline first
            while line and not line.startswith(b"size="):
                line = proc.stdout.readline()
            seen.append(line.strip())
            if seen[-1] == b"size=45 123":
                break
        assert seen[-1] == b"size=45 123", seen
        # A terminal ends input with Ctrl-D; closing stdin does not reach a TTY's reader.
        proc.stdin.write(b"\x04")
        assert proc.wait(30) == 0


def test_ten_megabytes_of_output_arrive_without_loss(shell: Tuple[Api[Pod], str]) -> None:
    pods, _ = shell
    made = pods.exec(POD, ["sh", "-c", f"head -c {TEN_MB} /dev/urandom > /tmp/blob"])
    assert made.returncode == 0, made.stderr
    result = pods.exec(POD, ["cat", "/tmp/blob"], timeout=120)
    remote = pods.exec(POD, ["sha256sum", "/tmp/blob"], check=True).stdout.split()[0]
    assert len(result.stdout) == TEN_MB
    assert hashlib.sha256(result.stdout).hexdigest().encode() == remote


def test_a_user_without_create_on_pods_exec_is_forbidden(
        shell: Tuple[Api[Pod], str], kube_cluster: Any) -> None:
    _, namespace = shell
    config = Config.from_kubeconfig(kube_cluster.kubeconfig_path, context="nobody")
    with Client(config) as client, pytest.raises(errors.Forbidden) as info:
        Api(client, Pod, namespace=namespace).exec(POD, ["true"])
    assert info.value.code == 403 and "pods/exec" in info.value.message


def test_a_missing_pod_is_not_found(shell: Tuple[Api[Pod], str]) -> None:
    pods, _ = shell
    with pytest.raises(errors.NotFound) as info:
        pods.exec("no-such-pod", ["true"])
    assert info.value.reason == "NotFound"
