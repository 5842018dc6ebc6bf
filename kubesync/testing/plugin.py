"""pytest plugin: the local cluster and namespace fixtures (filled in by the cluster work)."""
