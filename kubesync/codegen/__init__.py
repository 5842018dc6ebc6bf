"""Typed models for custom resources you did not write: kopium for Python.

From a CustomResourceDefinition (a file, a folder, stdin, or a live cluster) to attrs
model classes shaped like the built-in ones: lazy, lossless (fields the schema does not
name survive get -> replace), typed for mypy --strict, with ``api_resource`` so
``Api(client, Certificate)`` works::

    python -m kubesync.codegen crds/ -o myproject/crds/     # one module per CRD version
    python -m kubesync.codegen --from-cluster certificates.cert-manager.io -o models/

or, in a notebook, a class built at run time from the live CRD::

    Certificate = model_from_crd(Api(client, CustomResourceDefinition).get(
        "certificates.cert-manager.io"))
"""

from kubesync.codegen.generate import (
    CodegenError,
    crds_from_cluster,
    generate,
    model_from_crd,
    models_from_crd,
    read_crds,
)

__all__ = [
    "CodegenError",
    "crds_from_cluster",
    "generate",
    "model_from_crd",
    "models_from_crd",
    "read_crds",
]
