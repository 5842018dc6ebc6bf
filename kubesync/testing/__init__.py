"""Testing helpers: a real local control plane (``LocalCluster``), an in-memory API server
(``FakeApiServer``) and a pytest plugin.

The plugin is registered with pytest's ``pytest11`` entry point, so a project that
installs kubesync gets the ``kube_cluster``, ``kube_client`` and ``kube_namespace``
fixtures. Set ``KUBESYNC_TEST_KUBECONFIG`` to run the same tests against an existing
cluster instead of a local one.
"""

from kubesync.testing.assets import MissingBinaries, find_binaries
from kubesync.testing.cluster import PAUSE_IMAGE, TEST_IMAGE, ClusterError, LocalCluster
from kubesync.testing.fake import FakeApiServer

__all__ = [
    "PAUSE_IMAGE",
    "TEST_IMAGE",
    "ClusterError",
    "FakeApiServer",
    "LocalCluster",
    "MissingBinaries",
    "find_binaries",
]
