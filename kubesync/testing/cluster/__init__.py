"""The local test cluster: a control plane on loopback and, optionally, one real node.

- :mod:`.local`: ``LocalCluster``, the control plane and its lifecycle;
- :mod:`.node`: the node (containerd, kubelet, pod network) it starts;
- :mod:`.nodeinit`: PID 1 of the node's namespaces;
- :mod:`.procs`: child processes tied to ours; :mod:`.sweep`: what killed runs left.
"""

from kubesync.testing.cluster.local import (
    NODE_TIMEOUT,
    SERVICE_CIDR,
    START_TIMEOUT,
    ClusterError,
    LocalCluster,
)
from kubesync.testing.cluster.node import NODE_NAME, PAUSE_IMAGE, TEST_IMAGE
from kubesync.testing.cluster.sweep import sweep_stale_folders

__all__ = [
    "NODE_NAME",
    "NODE_TIMEOUT",
    "PAUSE_IMAGE",
    "SERVICE_CIDR",
    "START_TIMEOUT",
    "TEST_IMAGE",
    "ClusterError",
    "LocalCluster",
    "sweep_stale_folders",
]
