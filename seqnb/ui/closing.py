"""Closing widgets for good: a replaced widget must be closed, with its children, layout and style, or the
kernel keeps it (and the front end may too)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ipywidgets as w

__all__ = ["close_tree", "replace_children"]


def close_tree(widgets: w.Widget | Iterable[w.Widget]) -> None:
    """Close widgets, their children (recursively), and the layout and style widgets they own."""
    stack: list[Any] = [widgets] if isinstance(widgets, w.Widget) else list(widgets)
    while stack:
        widget = stack.pop()
        if not isinstance(widget, w.Widget):
            continue
        stack.extend(getattr(widget, "children", ()))
        for part in ("layout", "style"):
            owned = getattr(widget, part, None)
            if isinstance(owned, w.Widget):
                stack.append(owned)
        widget.close()


def replace_children(box: w.Box, children: Iterable[w.Widget]) -> None:
    """Show ``children`` in ``box`` and close what it showed before (unless shown again)."""
    new = tuple(children)
    old = [c for c in box.children if all(c is not n for n in new)]
    box.children = new
    close_tree(old)
