"""The cluster a run measures against, and the clients every workload builds from it."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, List, Optional, Tuple

import requests
import yaml

#: The seed fills two namespaces: one of LIST_COUNT ConfigMaps (list, watch, controller),
#: one of STORE_COUNT (store memory, reflector), as the issue's workloads ask.
LIST_COUNT = 5000
STORE_COUNT = 10000


@dataclass
class Env:
    """Where the cluster is, how to reach it, and what the seed put in it."""

    kubeconfig: str
    server: str
    ca: str
    cert: Tuple[str, str]
    list_count: int = LIST_COUNT
    store_count: int = STORE_COUNT
    quick: bool = False

    # Named by their size, so that runs of different sizes against one cluster (--quick,
    # then a full run, with --kubeconfig) each find exactly their objects.
    @property
    def list_ns(self) -> str:
        return f"bench-list-{self.list_count}"

    @property
    def store_ns(self) -> str:
        return f"bench-store-{self.store_count}"

    @classmethod
    def from_kubeconfig(cls, path: str, **kw: Any) -> Env:
        """Read the current context's server, CA and client certificate (file paths)."""
        with open(path) as f:
            doc = yaml.safe_load(f)
        ctx_name = doc["current-context"]
        ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in doc["users"] if u["name"] == ctx["user"])
        return cls(
            kubeconfig=path,
            server=cluster["server"],
            ca=cluster["certificate-authority"],
            cert=(user["client-certificate"], user["client-key"]),
            **kw,
        )

    def url(self, namespace: str, *, name: Optional[str] = None) -> str:
        """The ConfigMaps collection (or one of them) of ``namespace``."""
        base = f"{self.server}/api/v1/namespaces/{namespace}/configmaps"
        return base if name is None else f"{base}/{name}"

    def session(self, pool: int = 10) -> requests.Session:
        """The raw baseline's Session: the kubeconfig's CA and client certificate.

        ``trust_env`` is off: REQUESTS_CA_BUNDLE (set on many machines) would otherwise
        replace ``verify`` with the system bundle, which does not know the cluster's CA.
        """
        s = requests.Session()
        s.trust_env = False
        s.verify = self.ca
        s.cert = self.cert
        adapter = requests.adapters.HTTPAdapter(pool_connections=2, pool_maxsize=pool)
        s.mount("https://", adapter)
        return s

    def kubesync_client(self) -> Any:
        from kubesync import Client, Config

        return Client(Config.from_kubeconfig(self.kubeconfig))


def dump_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=str)


def load_average() -> Optional[Tuple[float, float, float]]:
    try:
        return os.getloadavg()
    except OSError:  # pragma: no cover - not on every platform
        return None


def kubesync_json_backend() -> str:
    from kubesync.core import json as ks_json

    return str(ks_json.BACKEND)


@contextlib.contextmanager
def stdlib_json() -> Iterator[None]:
    """Make kubesync decode with the standard library's ``json``, its fallback where
    orjson (a dependency) cannot be installed, e.g. a platform without orjson wheels.

    Patches the two names kubesync reads bodies through, for the duration only.
    """
    import kubesync.client.api as ks_api
    from kubesync.core import json as ks_json

    # Api reads bodies through kubesync.core.json's module attribute; an older Api had
    # its own ``loads`` name, patched too where it is there.
    modules: List[Any] = [m for m in (ks_json, ks_api) if hasattr(m, "loads")]
    saved = [m.loads for m in modules]
    for m in modules:
        m.loads = json.loads
    try:
        yield
    finally:
        for m, old in zip(modules, saved):
            m.loads = old


def with_stdlib_json(fn: Callable[[], float]) -> Callable[[], float]:
    """``fn`` run under ``stdlib_json()``."""

    def run() -> float:
        with stdlib_json():
            return fn()

    return run
