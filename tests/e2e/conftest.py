"""Fixtures shared by the e2e modules."""

from __future__ import annotations

from typing import Any

import pytest

from kubesync import Api
from kubesync.models.core_v1 import ConfigMap


@pytest.fixture
def cms(kube_client: Any, kube_namespace: str) -> Api[ConfigMap]:
    """ConfigMaps in the test's own namespace."""
    return Api(kube_client, ConfigMap, namespace=kube_namespace)
