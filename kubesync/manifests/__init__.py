"""Manifests: YAML and JSON files as typed objects, applied like ``kubectl apply --server-side``.

``load()`` reads a file, a folder, a string or a stream (many documents per file, ``List``
kinds flattened) into models for the kinds we know and ``DynamicObject`` for the rest.
``apply()`` server-side applies them in dependency order: Namespaces and
CustomResourceDefinitions first, then (once every CRD is Established) cluster-scoped
objects, then namespaced ones. ``dump()`` writes objects back as YAML.
See https://kubernetes.io/docs/reference/using-api/server-side-apply/
"""

from kubesync.manifests.applier import ApplyError, apply
from kubesync.manifests.dumper import dump
from kubesync.manifests.loader import EXTENSIONS, ManifestError, Source, load

__all__ = ["EXTENSIONS", "ApplyError", "ManifestError", "Source", "apply", "dump", "load"]
