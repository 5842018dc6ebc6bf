"""Fixtures shared by the unit modules that talk to a canned API server (``responses``)."""

from __future__ import annotations

from typing import Iterator

import pytest
import responses

from kubesync import Client, Config

#: The canned server's address; modules with a server of their own define their fixtures.
CANNED_SERVER = "https://k8s.test"


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as r:
        yield r


@pytest.fixture
def canned_client() -> Iterator[Client]:
    """A Client of :data:`CANNED_SERVER`, without retries (each test says what it answers)."""
    c = Client(Config(server=CANNED_SERVER, insecure_skip_tls_verify=True), retries=0)
    yield c
    c.close()
