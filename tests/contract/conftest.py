"""The contract suite's one fixture: the same tests against ``FakeApiServer`` and a real
API server (the plugin's ``kube_cluster``: the local cluster, or
``KUBESYNC_TEST_KUBECONFIG``). The real half is marked ``e2e``, like every test that needs
a cluster; a difference the fake documents is a ``fake_differs`` mark on the test."""

from __future__ import annotations

import secrets
import time
from typing import Any, Callable, Iterator, Optional

import pytest

from kubesync import Client

#: How long a test waits for what a real control plane does in the background
#: (garbage collection, namespace clean-up).
SETTLE_TIMEOUT = 60.0


class Server:
    """One API server under test: a client, a fresh namespace, and its few controls."""

    def __init__(self, kind: str, client: Client, namespace: str, backend: Any):
        self.kind = kind
        self.client = client
        self.namespace = namespace
        self._backend = backend

    @property
    def is_fake(self) -> bool:
        return self.kind == "fake"

    def compact(self) -> None:
        """Older resourceVersions answer 410 Gone from now on."""
        self._backend.compact()

    def eventually(self, check: Callable[[], Optional[Any]], what: str,
                   timeout: float = SETTLE_TIMEOUT) -> Any:
        """Poll ``check`` until it returns something truthy (the fake settles at once; a
        real cluster's controllers take a moment)."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.kind}: {what} did not happen in {timeout}s")
            time.sleep(0.1)  # polling the API for a controller's write; nothing to wait on


@pytest.fixture(scope="session")
def contract_fake() -> Iterator[Any]:
    """One FakeApiServer and client for the session, as the real half shares its cluster
    (a kubesync Client takes longer to make than the fake takes to start)."""
    from kubesync.testing.fake import FakeApiServer

    with FakeApiServer() as fake:
        client = fake.client()
        try:
            yield fake, client
        finally:
            client.close()


@pytest.fixture(params=["fake", pytest.param("real", marks=pytest.mark.e2e)])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    if request.param == "fake":
        fake, client = request.getfixturevalue("contract_fake")
        namespace = f"contract-{secrets.token_hex(3)}"
        client.request("POST", "/api/v1/namespaces",
                       body={"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": namespace}})
        try:
            yield Server("fake", client, namespace, fake)
        finally:
            client.request("DELETE", f"/api/v1/namespaces/{namespace}")
        return
    client = request.getfixturevalue("kube_client")
    namespace = request.getfixturevalue("kube_namespace")
    backend = request.getfixturevalue("kube_cluster")
    yield Server("real", client, namespace, backend)
