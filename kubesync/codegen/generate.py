"""CRDs in, modules out: the generator as a library call.

``generate`` gives the source of one module per CRD version; ``models_from_crd`` builds
such a module in this process (for a notebook: a typed class from the live CRD, no files);
``read_crds`` finds the CRDs in files, folders, text or streams.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Type, Union

from kubesync.codegen.plan import CodegenError, ModuleSpec, plan_version
from kubesync.codegen.render import render_module
from kubesync.core.convert import encode

if TYPE_CHECKING:
    from kubesync.client.client import Client
    from kubesync.manifests.loader import Source

__all__ = [
    "CodegenError",
    "crds_from_cluster",
    "generate",
    "model_from_crd",
    "models_from_crd",
    "module_name",
    "read_crds",
]

CRD_KIND = "CustomResourceDefinition"
CRD_API_VERSION = "apiextensions.k8s.io/v1"
#: Where run-time modules are registered (sys.modules), so annotations, pickling and
#: isinstance checks find one class per CRD version.
RUNTIME_PACKAGE = "kubesync.codegen.live"

CrdLike = Union[Mapping[str, Any], Any]


def read_crds(*sources: Source) -> List[Dict[str, Any]]:
    """The CustomResourceDefinitions in ``sources`` (paths of files or folders, YAML text,
    streams), as JSON dicts in order. Other kinds are passed over (an operator's bundle
    mixes them); no CRD at all, or a v1beta1 one, is a ``CodegenError``."""
    from kubesync.manifests.loader import load

    crds: List[Dict[str, Any]] = []
    for source in sources:
        for obj in load(source):
            data = encode(obj)
            if data.get("kind") != CRD_KIND:
                continue
            crds.append(_checked(data, _name_of(source)))
    if not crds:
        raise CodegenError(f"no CustomResourceDefinition found in "
                           f"{', '.join(_name_of(s) for s in sources) or 'no input'}")
    return crds


def crds_from_cluster(client: Client, names: Iterable[str]) -> List[Dict[str, Any]]:
    """The named CRDs (``widgets.example.com``) as the cluster serves them."""
    from kubesync.client.api import Api
    from kubesync.models.apiextensions_v1 import CustomResourceDefinition

    api = Api(client, CustomResourceDefinition)
    return [_checked(encode(api.get(name)), f"the cluster ({name})") for name in names]


def _name_of(source: Any) -> str:
    if isinstance(source, str) and "\n" in source:
        return "<string>"
    return str(getattr(source, "name", source))


def _checked(crd: Dict[str, Any], where: str) -> Dict[str, Any]:
    if crd.get("apiVersion") != CRD_API_VERSION:
        name = (crd.get("metadata") or {}).get("name")
        raise CodegenError(f"{where}: CRD {name} is {crd.get('apiVersion')}; only "
                           f"{CRD_API_VERSION} CRDs have the structural schemas types "
                           "are made from")
    return crd


def _as_json(crd: CrdLike) -> Dict[str, Any]:
    data = crd if isinstance(crd, Mapping) else encode(crd)
    return _checked(dict(data), "the CRD")


def _versions(crd: Dict[str, Any], versions: Optional[Iterable[str]]) -> List[str]:
    served: List[str] = [v["name"] for v in (crd.get("spec") or {}).get("versions") or []
              if isinstance(v, dict) and isinstance(v.get("name"), str)]
    if versions is None:
        return served
    wanted = list(versions)
    missing = [v for v in wanted if v not in served]
    if missing:
        name = (crd.get("metadata") or {}).get("name")
        raise CodegenError(f"CustomResourceDefinition {name} has no version(s) {missing} "
                           f"(it has {served})")
    return wanted


def module_name(module: ModuleSpec) -> str:
    """The file stem of a module: ``widget_v1`` (the kind in lower case, the version)."""
    return f"{module.kind.lower()}_{module.version}"


def generate(crds: Iterable[CrdLike], *, versions: Optional[Iterable[str]] = None,
             docs: bool = False) -> Dict[str, str]:
    """``{file name: source}``: one module per version of every CRD (or only ``versions``).

    The output depends only on the CRDs: running it again gives the same bytes. Two
    CRDs whose modules would share a name (one kind in two groups) are an error naming
    both, rather than one silently replacing the other.
    """
    out: Dict[str, str] = {}
    owners: Dict[str, str] = {}
    wanted = None if versions is None else list(versions)
    for crd in crds:
        data = _as_json(crd)
        chosen = _versions(data, wanted) if wanted is None else [
            v for v in _versions(data, None) if v in wanted]
        for version in chosen:
            module = plan_version(data, version)
            file = module_name(module) + ".py"
            if file in owners and owners[file] != module.crd_name:
                raise CodegenError(f"{module.crd_name} and {owners[file]} would both be "
                                   f"written to {file}: generate them into separate folders")
            owners[file] = module.crd_name
            out[file] = render_module(module, docs=docs)
    if not out:
        raise CodegenError(f"no CRD has the version(s) {wanted}")
    return out


def models_from_crd(crd: CrdLike, version: Optional[str] = None) -> types.ModuleType:
    """The generated module of one CRD version, built in this process (no files): its
    classes are attributes (``module.Widget``, ``module.WidgetSpec``). ``version``
    defaults to the storage version. Built once per CRD content: the same CRD again
    gives the same module and classes."""
    data = _as_json(crd)
    if version is None:
        version = next((v.get("name") for v in data["spec"].get("versions") or []
                        if isinstance(v, dict) and v.get("storage")), None)
        if version is None:
            raise CodegenError(f"CustomResourceDefinition {data['metadata'].get('name')} "
                               "has no storage version; name the version")
    module = plan_version(data, version)
    name = (f"{RUNTIME_PACKAGE}.{module.group.replace('.', '_').replace('-', '_')}"
            f"_{module_name(module)}_{module.digest[:12]}")
    existing = sys.modules.get(name)
    if existing is not None:
        return existing
    source = render_module(module)
    mod = types.ModuleType(name, f"{module.group}/{module.version} {module.kind}, built from "
                                 f"CRD {module.crd_name} at run time")
    mod.__file__ = f"<kubesync.codegen {module.crd_name} {version}>"
    # Registered before running: annotations are resolved in the module by its name.
    sys.modules[name] = mod
    try:
        exec(compile(source, mod.__file__, "exec"), mod.__dict__)  # our own generated source
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def model_from_crd(crd: CrdLike, version: Optional[str] = None) -> Type[Any]:
    """The resource class of one CRD version, built in this process: ``Api(client,
    model_from_crd(crd))`` lists typed objects. See ``models_from_crd``."""
    mod = models_from_crd(crd, version)
    kind = (crd if isinstance(crd, Mapping) else encode(crd))["spec"]["names"]["kind"]
    cls: Type[Any] = getattr(mod, kind)
    return cls
