"""Reading manifests: YAML and JSON files, folders, strings and streams -> typed objects.

Pure: reads files, never the network. Known kinds come back as their models, others as
``DynamicObject``; errors name the file, the document and its line.
"""

from __future__ import annotations

import base64
import math
import os
from pathlib import Path
from typing import IO, Any, Dict, Iterator, List, Optional, Tuple, Union

import attrs
import yaml

from kubesync.core.dynamic import DynamicObject
from kubesync.errors import KubeError, UsageError

__all__ = ["EXTENSIONS", "ManifestError", "Source", "load"]

#: What ``load`` reads: a path (file or folder), YAML/JSON text, or an open stream.
Source = Union[str, "os.PathLike[str]", IO[str], IO[bytes]]
#: File names a folder contributes, as ``kubectl apply -f DIR`` reads them.
EXTENSIONS = (".yaml", ".yml", ".json")


class ManifestError(KubeError, ValueError):
    """A manifest cannot be read or used.

    ``source`` names the file (``<string>``/``<stream>`` otherwise), ``document`` the
    document's number in it (1 for the first), ``line`` where that document starts.
    """

    def __init__(
        self, message: str, *, source: Optional[str] = None, document: Optional[int] = None,
        line: Optional[int] = None,
    ):
        self.message = message
        self.source = source
        self.document = document
        self.line = line
        where = _where(source, document, line)
        super().__init__(f"{where}: {message}" if where else message)


def _where(source: Optional[str], document: Optional[int], line: Optional[int]) -> str:
    parts = [source] if source else []
    if document is not None:
        parts.append(f"document {document}" + (f" (line {line})" if line else ""))
    return ", ".join(parts)


@attrs.frozen
class _Origin:
    """Where an object came from, for error messages."""

    source: Optional[str] = None
    document: Optional[int] = None
    line: Optional[int] = None
    item: Optional[int] = None  # its index in a List document's items

    def error(self, message: str) -> ManifestError:
        if self.item is not None:
            message = f"items[{self.item}]: {message}"
        return ManifestError(message, source=self.source, document=self.document,
                             line=self.line)


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):
    """PyYAML's safe loader, keeping timestamps as the strings they are in JSON (the
    server's YAML reader does the same; a datetime would not encode)."""


_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def load(source: Source) -> List[Any]:
    """The objects in ``source``: a file, a folder (its ``*.yaml``, ``*.yml`` and
    ``*.json`` files in name order), YAML or JSON text, or an open stream.

    Known kinds (``kubesync.models.model_for``) come back as their models, others as
    ``DynamicObject``. Empty documents are skipped; ``List`` kinds are flattened.
    A document that is not an object with ``apiVersion`` and ``kind`` raises
    ``ManifestError`` naming the file, the document and what is wrong.
    """
    return [obj for obj, _ in _load(source)]


def _load(source: Source) -> List[Tuple[Any, _Origin]]:
    if hasattr(source, "read"):
        text = source.read()
        name = getattr(source, "name", None)
        return list(_objects(text, name if isinstance(name, str) else "<stream>"))
    if isinstance(source, bytes):
        return list(_objects(source, "<string>"))
    if isinstance(source, os.PathLike):
        return _load_path(Path(source))
    if not isinstance(source, str):
        raise UsageError(
            f"load takes a path, YAML text or a stream, not {type(source).__name__}"
        )
    if "\n" not in source and (
        source.lower().endswith(EXTENSIONS) or os.path.exists(source)
    ):
        return _load_path(Path(source))
    return list(_objects(source, "<string>"))


def _load_path(path: Path) -> List[Tuple[Any, _Origin]]:
    if path.is_dir():
        files = sorted(p for p in path.iterdir()
                       if p.is_file() and p.suffix.lower() in EXTENSIONS)
        return [entry for f in files for entry in _load_path(f)]
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ManifestError(f"cannot read it: {e.strerror or e}", source=str(path)) from None
    return list(_objects(data, str(path)))


def _objects(text: Union[str, bytes], source: str) -> Iterator[Tuple[Any, _Origin]]:
    """Each object of each document of ``text`` with its origin."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            raise ManifestError(f"not UTF-8 text: {e}", source=source) from None
    loader = _Loader(text)
    number = 0
    try:
        while True:
            number += 1
            try:
                if not loader.check_node():
                    return
                node = loader.get_node()
                data = loader.construct_document(node) if node is not None else None
            except yaml.YAMLError as e:
                raise ManifestError(_yaml_problem(e), source=source, document=number) from None
            if data is None:  # an empty document, as kubectl skips them
                continue
            line = node.start_mark.line + 1 if node is not None else None
            origin = _Origin(source, number, line)
            yield from _typed_objects(_json(data, origin, ""), origin)
    finally:
        loader.dispose()


def _yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error as one line: what, and the line and column in the whole file."""
    if not isinstance(e, yaml.MarkedYAMLError):
        return f"invalid YAML: {e}"
    mark = e.problem_mark or e.context_mark
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = "; ".join(str(p) for p in (e.context, e.problem) if p)
    return f"invalid YAML{at}: {what}"


def _json(value: Any, origin: _Origin, path: str) -> Any:
    """``value`` as JSON data: fresh dicts and lists (YAML anchors share them), string
    keys (as the server's YAML reader writes ``1:`` or ``true:``)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            key = _key(k, origin, path)
            out[key] = _json(v, origin, f"{path}.{key}" if path else key)
        return out
    if isinstance(value, list):
        return [_json(v, origin, f"{path}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise origin.error(f"{path or 'the document'}: {value} is not a JSON number")
        return value
    if isinstance(value, bytes):  # !!binary: base64 text, as a []byte field takes it
        return base64.b64encode(value).decode("ascii")
    raise origin.error(f"{path or 'the document'}: a {type(value).__name__} is not JSON data")


def _key(key: Any, origin: _Origin, path: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, (int, float)):
        return str(key)
    raise origin.error(f"{path or 'the document'}: a {type(key).__name__} key is not allowed")


def _typed_objects(data: Any, origin: _Origin) -> Iterator[Tuple[Any, _Origin]]:
    if not isinstance(data, dict):
        raise origin.error(f"expected an object, got {_a(data)}")
    kind = data.get("kind")
    if origin.item is None and isinstance(kind, str) and kind.endswith("List") \
            and isinstance(data.get("items"), list):
        for i, item in enumerate(data["items"]):
            yield from _typed_objects(item, attrs.evolve(origin, item=i))
        return
    yield _typed(data, origin), origin


def _typed(data: Dict[str, Any], origin: _Origin) -> Any:
    """One object as its model or a DynamicObject, after the checks every object needs."""
    kind, api_version = data.get("kind"), data.get("apiVersion")
    for key, value in (("apiVersion", api_version), ("kind", kind)):
        if value is None or value == "":
            raise origin.error(f"the object has no {key}")
        if not isinstance(value, str):
            raise origin.error(f"{key} must be a string, not {_a(value)}")
    metadata = data.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise origin.error(f"metadata must be an object, not {_a(metadata)}")
    for key in ("name", "namespace", "generateName"):
        value = (metadata or {}).get(key)
        if value is not None and not isinstance(value, str):
            raise origin.error(f"metadata.{key} must be a string, not {_a(value)}")
    from kubesync.core.convert import decode
    from kubesync.models import model_for

    cls = model_for(api_version, kind)  # type: ignore[arg-type]
    if cls is not None and getattr(cls, "api_resource", None) is not None:
        return decode(cls, data)
    return DynamicObject(data)


def _a(value: Any) -> str:
    """What a JSON value is, with its article: ``an array``, ``a string``."""
    words = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return words.get(type(value), f"a {type(value).__name__}")
