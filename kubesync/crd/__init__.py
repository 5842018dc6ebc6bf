"""Custom resources from attrs classes: kube-derive's ``#[derive(CustomResource)]``.

Spec, status and nested classes are attrs classes: ``Model`` subclasses, or plain ones
(a Model with the same fields is built from each), so custom objects decode lazily and
keep fields they do not know, like the generated models::

    import attrs
    from typing import List, Optional
    from kubesync.crd import CustomResource, Model, PrinterColumn, field, install

    @attrs.define
    class FooSpec(Model):
        \"\"\"What a Foo should be.\"\"\"
        image: str = field(description="the image to run")
        replicas: int = attrs.field(default=1, validator=attrs.validators.ge(0))
        args: List[str] = attrs.Factory(list)

    @attrs.define
    class FooStatus(Model):
        ready: Optional[int] = None

    class Foo(CustomResource[FooSpec, FooStatus], group="example.com", version="v1",
              printer_columns=[PrinterColumn("Replicas", "integer", ".spec.replicas")]):
        \"\"\"A Foo runs some replicas of an image.\"\"\"

    install(client, Foo)                       # apply the CRD, wait until Established
    foos = Api(client, Foo, namespace="default")
    foos.create(Foo.new("a", FooSpec(image="nginx")))

``custom_resource(group=..., version=..., status=FooStatus)(FooSpec)`` builds the same
class without a class statement (kind ``Foo`` from ``FooSpec``). ``Foo.crd()`` is the
``CustomResourceDefinition``; ``merge_crds`` joins several versions into one.

The schema maps str, int, float, bool, datetime, Enum/Literal, Optional, List, Dict[str, X],
Union[int, str], Any and nested classes; see ``kubesync.crd.schema``.
"""

from kubesync.core.model import Model
from kubesync.crd.install import (
    CrdNotAccepted,
    CrdNotEstablished,
    CrdWaitTimeout,
    install,
    uninstall,
    wait_established,
)
from kubesync.crd.resource import (
    CustomResource,
    PrinterColumn,
    ScaleSubresource,
    custom_resource,
    merge_crds,
)
from kubesync.crd.schema import Rule, SchemaError, field, schema_for, validations

__all__ = [
    "CrdNotAccepted",
    "CrdNotEstablished",
    "CrdWaitTimeout",
    "CustomResource",
    "Model",
    "PrinterColumn",
    "Rule",
    "ScaleSubresource",
    "SchemaError",
    "custom_resource",
    "field",
    "install",
    "merge_crds",
    "schema_for",
    "uninstall",
    "validations",
    "wait_established",
]
