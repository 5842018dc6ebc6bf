"""Kubernetes resource quantities (``500m``, ``1.5Gi``, ``2e3``) as exact Decimals.

Models keep quantities as the server's strings (so they round-trip exactly); this parses
them when arithmetic is needed. Grammar: https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Union

__all__ = ["parse_quantity"]

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}

_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<binary>Ki|Mi|Gi|Ti|Pi|Ei)|[eE](?P<exponent>[+-]?\d+)|(?P<decimal>[numkMGTPE]?))$"
)


def parse_quantity(quantity: Union[str, int, float, Decimal]) -> Decimal:
    """The value of a quantity: ``parse_quantity("1Ki") == 1024``, ``("250m") == 0.25``.

    Raises ``ValueError`` for text that is not a quantity.
    """
    if isinstance(quantity, bool):
        raise ValueError(f"not a quantity: {quantity!r}")
    if isinstance(quantity, (int, Decimal)):
        return Decimal(quantity)
    if isinstance(quantity, float):
        return Decimal(str(quantity))
    m = _QUANTITY.match(quantity.strip()) if isinstance(quantity, str) else None
    if m is None:
        raise ValueError(f"not a quantity: {quantity!r}")
    try:
        number = Decimal(m["number"])
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise ValueError(f"not a quantity: {quantity!r}") from None
    if m["binary"]:
        return number * (1024 ** _BINARY[m["binary"]])
    if m["exponent"] is not None:
        return number.scaleb(int(m["exponent"]))
    return number.scaleb(_DECIMAL[m["decimal"] or ""])
