"""Presentation: how objects look in Jupyter, and progress lines for long operations.

Above ``core`` in the import graph and beside the rest: nothing in ``core``, ``client`` or
``runtime`` imports it at module level. Objects reach it from their ``_repr_html_`` hooks,
and operations with a ``progress=`` switch when they start, both by a function-level
import, so a script that never shows anything never loads it.
"""

from kubesync.display.progress import Progress, display_mode
from kubesync.display.render import (
    age,
    list_html,
    object_html,
    object_text,
    store_html,
    table_html,
)

__all__ = [
    "Progress",
    "age",
    "display_mode",
    "list_html",
    "object_html",
    "object_text",
    "store_html",
    "table_html",
]
