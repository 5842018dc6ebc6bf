"""Python names for JSON names: ``podIPs`` -> ``pod_ips``, ``continue`` -> ``continue_``.

One rule for every generator (the built-in models and the custom-resource models), so a
field is spelled the same wherever it appears.
"""

from __future__ import annotations

import keyword
import re

__all__ = ["class_part", "snake"]

# Names the camelCase splitter cannot get right alone.
NAME_EXCEPTIONS = {"openAPIV3Schema": "open_api_v3_schema"}

TOKEN_RE = re.compile(
    r"[A-Z]+[0-9]*s(?![a-z])|[A-Z]+[0-9]*(?=[A-Z][a-z]|$)|[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*|[0-9]+"
)


def _words(name: str) -> list[str]:
    return [t for chunk in re.split(r"[^A-Za-z0-9]+", name) for t in TOKEN_RE.findall(chunk)]


def snake(name: str) -> str:
    """The attribute name of JSON name ``name``: snake_case, never a keyword, never
    starting with a digit or an underscore (attrs would strip it from ``__init__``)."""
    if name in NAME_EXCEPTIONS:
        return NAME_EXCEPTIONS[name]
    result = "_".join(t.lower() for t in _words(name)) or "field"
    if result[0].isdigit():
        result = "f_" + result
    return result + "_" if keyword.iskeyword(result) else result


def class_part(name: str) -> str:
    """``privateKey`` -> ``PrivateKey``, ``tls-config`` -> ``TlsConfig``: one part of a
    nested class's name."""
    part = "".join(t[:1].upper() + t[1:] for t in _words(name)) or "Field"
    return "F" + part if part[0].isdigit() else part
