"""pytest plugin: a Kubernetes API server for e2e tests, and a fresh namespace per test.

Fixtures:
  ``kube_cluster``   session; a started ``LocalCluster``, or, when
                     ``KUBESYNC_TEST_KUBECONFIG`` names a kubeconfig, that cluster.
  ``kube_local_cluster``  the same, for tests that need ``restart_apiserver()`` or
                     ``compact()``: skipped, with the reason shown, on an external cluster.
  ``kube_client``    session; a ``kubesync.Client`` for the cluster's admin user.
  ``kube_namespace`` function; the name of a new namespace, deleted after the test.

A cluster that cannot start is an error in every test that asks for it, never a skip.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
from typing import TYPE_CHECKING, Any, Iterator, Optional

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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: needs a Kubernetes API server (the local test cluster by default)"
    )


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[Any]:
    external = os.environ.get(KUBECONFIG_ENV)
    if external:
        yield ExternalCluster(os.path.expanduser(external))
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
    cluster = LocalCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        if ours and signal.getsignal(signal.SIGTERM) is _interrupt:
            signal.signal(signal.SIGTERM, previous)


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
def kube_namespace(kube_client: Client, request: pytest.FixtureRequest) -> Iterator[str]:
    name = _namespace_name(request.node.name)
    kube_client.request(
        "POST", "/api/v1/namespaces",
        body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
    )
    try:
        yield name
    finally:
        _delete_namespace(kube_client, name)


def _delete_namespace(client: Client, name: str) -> Optional[Any]:
    from kubesync.errors import NotFound

    try:
        return client.request("DELETE", f"/api/v1/namespaces/{name}")
    except NotFound:
        return None
