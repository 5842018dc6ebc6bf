"""pytest plugin: a Kubernetes cluster for e2e tests, and a fresh namespace per test.

Options (or the env vars in brackets):
  ``--kube-version V``  the local cluster's Kubernetes version, "1.37" (the newest, the
                     default) or "1.20" (the oldest) [KUBESYNC_TEST_VERSION]
  ``--no-kube-node``    a control plane without a node (no pod ever runs)
                     [KUBESYNC_TEST_NODE=0]
  ``--kube-fake``       ``kube_cluster`` is an in-memory ``FakeApiServer`` instead of a
                     local cluster (fast; docs/testing.md says what it leaves out)
                     [KUBESYNC_TEST_FAKE=1]

Markers:
  ``kube_node``      the test needs a node that runs pods
  ``kube_min_version("1.30")``  the test needs at least that Kubernetes version

Tests whose markers the configured cluster cannot serve are deselected, and the summary
says how many and why; on an external cluster (below) nothing is deselected.

Fixtures:
  ``kube_cluster``   session; a started ``LocalCluster``, or, when
                     ``KUBESYNC_TEST_KUBECONFIG`` names a kubeconfig, that cluster.
  ``kube_local_cluster``  the same, for tests that need ``restart_apiserver()`` or
                     ``compact()``: skipped, with the reason shown, on an external cluster.
  ``kube_client``    session; a ``kubesync.Client`` for the cluster's admin user.
  ``kube_namespace`` function; the name of a new namespace, deleted after the test.
  ``kube_fake_server``  function; a started ``FakeApiServer`` of the test's own (a few
                     milliseconds), stopped after it. ``kube_fake_server.client()`` gives
                     a ``Client``; ``kubeconfig_path`` serves any other client.

A cluster that cannot start is an error in every test that asks for it, never a skip.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple

import pytest

if TYPE_CHECKING:
    from kubesync.client.client import Client

KUBECONFIG_ENV = "KUBESYNC_TEST_KUBECONFIG"


class ExternalCluster:
    """An existing cluster named by ``KUBESYNC_TEST_KUBECONFIG``."""

    def __init__(self, kubeconfig_path: str):
        self.kubeconfig_path = kubeconfig_path

    def restart_apiserver(self) -> None:
        pytest.skip(f"restart_apiserver() needs the local cluster ({KUBECONFIG_ENV} is set)")

    def compact(self) -> int:
        pytest.skip(f"compact() needs the local cluster ({KUBECONFIG_ENV} is set)")


VERSION_ENV = "KUBESYNC_TEST_VERSION"
NODE_ENV = "KUBESYNC_TEST_NODE"
FAKE_ENV = "KUBESYNC_TEST_FAKE"
#: How long a new namespace may take to get its ``default`` ServiceAccount.
NAMESPACE_READY_TIMEOUT = 30.0
_DESELECTED = pytest.StashKey[Dict[str, int]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    from kubesync.testing.assets import NEWEST

    group = parser.getgroup("kubesync", "kubesync local test cluster")
    group.addoption(
        "--kube-version", default=os.environ.get(VERSION_ENV) or NEWEST,
        help=f"the local cluster's Kubernetes version (default {NEWEST}; ${VERSION_ENV})",
    )
    group.addoption(
        "--no-kube-node", dest="kube_node", action="store_false",
        default=os.environ.get(NODE_ENV, "1") not in ("0", "false", "no"),
        help=f"a control plane without a node: no pod runs (${NODE_ENV}=0)",
    )
    group.addoption(
        "--kube-fake", action="store_true",
        default=os.environ.get(FAKE_ENV, "0") not in ("0", "false", "no", ""),
        help=f"kube_cluster is an in-memory FakeApiServer, not a local cluster (${FAKE_ENV}=1)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: needs a Kubernetes API server (the local test cluster by default)"
    )
    config.addinivalue_line("markers", "kube_node: needs a node that runs pods")
    config.addinivalue_line(
        "markers", "kube_min_version(version): needs at least that Kubernetes version"
    )


def _minor(version: str) -> Tuple[int, int]:
    major, minor = str(version).lstrip("v").split(".")[:2]
    return int(major), int(minor)


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    if os.environ.get(KUBECONFIG_ENV):
        return
    version = _minor(config.getoption("kube_version"))
    # The fake runs no pods: node tests are deselected with it as without a node.
    node = bool(config.getoption("kube_node")) and not config.getoption("kube_fake")
    keep: List[pytest.Item] = []
    dropped: List[pytest.Item] = []
    reasons: Dict[str, int] = {}
    for item in items:
        why = None
        if not node and item.get_closest_marker("kube_node") is not None:
            why = "need a node"
        for mark in item.iter_markers("kube_min_version"):
            if version < _minor(mark.args[0]):
                why = f"need Kubernetes >= {mark.args[0]}"
        if why is None:
            keep.append(item)
        else:
            dropped.append(item)
            reasons[why] = reasons.get(why, 0) + 1
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    config.stash[_DESELECTED] = reasons


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    reasons = config.stash.get(_DESELECTED, {})
    if reasons:
        cluster = f"Kubernetes {config.getoption('kube_version')}" + (
            "" if config.getoption("kube_node") else " without a node")
        what = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
        terminalreporter.write_line(f"kubesync: deselected on {cluster}: {what}")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def kube_cluster(pytestconfig: pytest.Config) -> Iterator[Any]:
    external = os.environ.get(KUBECONFIG_ENV)
    if external:
        yield ExternalCluster(os.path.expanduser(external))
        return
    if pytestconfig.getoption("kube_fake"):
        from kubesync.testing.fake import FakeApiServer

        with FakeApiServer() as fake:
            yield fake
        return
    from kubesync.testing.cluster import LocalCluster

    # While our cluster runs, SIGTERM (a CI timeout, `kill`) becomes an interrupt, so
    # fixture teardown runs and the cluster's processes and folder go with it. Only
    # then, and only if nobody else handles SIGTERM: a plugin loaded into every pytest
    # run must not change signal handling for suites that never start a cluster.
    previous = signal.getsignal(signal.SIGTERM)
    ours = previous is signal.SIG_DFL
    if ours:
        try:
            signal.signal(signal.SIGTERM, _interrupt)
        except ValueError:  # not the main thread
            ours = False
    cluster = LocalCluster(
        version=pytestconfig.getoption("kube_version"),
        node=bool(pytestconfig.getoption("kube_node")),
    )
    try:
        cluster.start()
        yield cluster
    finally:
        if ours and signal.getsignal(signal.SIGTERM) is _interrupt:
            # A second SIGTERM must not cut the stop short (the node undoes host changes).
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            cluster.stop()
        finally:
            if ours and signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
                signal.signal(signal.SIGTERM, previous)


@pytest.fixture
def kube_fake_server() -> Iterator[Any]:
    from kubesync.testing.fake import FakeApiServer

    with FakeApiServer() as fake:
        yield fake


@pytest.fixture
def kube_local_cluster(kube_cluster: Any) -> Any:
    if isinstance(kube_cluster, ExternalCluster):
        pytest.skip(f"needs the local cluster's restart/compact ({KUBECONFIG_ENV} is set)")
    return kube_cluster


@pytest.fixture(scope="session")
def kube_client(kube_cluster: Any) -> Iterator[Client]:
    from kubesync.client.client import Client
    from kubesync.config import Config

    client = Client(Config.from_kubeconfig(kube_cluster.kubeconfig_path))
    try:
        yield client
    finally:
        client.close()


def _namespace_name(node_name: str) -> str:
    stem = re.sub(r"[^a-z0-9-]+", "-", node_name.lower()).strip("-")[:40].strip("-")
    return f"kst-{stem or 'test'}-{secrets.token_hex(3)}"


@pytest.fixture
def kube_namespace(
    kube_cluster: Any, kube_client: Client, request: pytest.FixtureRequest
) -> Iterator[str]:
    name = _namespace_name(request.node.name)
    kube_client.request(
        "POST", "/api/v1/namespaces",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    try:
        if getattr(kube_cluster, "service_account_admission", True):
            _wait_default_service_account(kube_client, name)
        yield name
    finally:
        _delete_namespace(kube_client, name)


def _wait_default_service_account(client: Client, namespace: str) -> None:
    """Until the namespace's ``default`` ServiceAccount exists.

    With the ServiceAccount admission plugin on (as on every real cluster), a pod created
    before the controller made that account is refused; ``kubectl`` users meet the same.
    """
    from kubesync.errors import NotFound

    deadline = time.monotonic() + NAMESPACE_READY_TIMEOUT
    path = f"/api/v1/namespaces/{namespace}/serviceaccounts/default"
    while True:
        try:
            client.request("GET", path)
            return
        except NotFound:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)  # polling the API for the controller's write; nothing to wait on


def _delete_namespace(client: Client, name: str) -> Optional[Any]:
    from kubesync.errors import NotFound

    try:
        return client.request("DELETE", f"/api/v1/namespaces/{name}")
    except NotFound:
        return None
