"""``FakeApiServer``: an in-memory Kubernetes API server for unit tests (see server.py).

The package's modules, one job each: ``storage`` (objects, the resourceVersion counter,
the change history), ``resources`` (what is served; discovery), ``backend`` (the verbs),
``lifecycle`` (finalizers, cascade, namespaces, CRDs), ``patch``, ``managed``
(server-side apply), ``selectors``, ``watch``, ``faults``, ``routes`` and ``server``.
"""

from kubesync.testing.fake.faults import Faults
from kubesync.testing.fake.server import FakeApiServer, RequestRecord

__all__ = ["FakeApiServer", "Faults", "RequestRecord"]
