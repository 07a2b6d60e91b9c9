"""What the registries share: a location's URL scheme, and an object named by import string
(`"package.module:attribute"`), imported only when it is asked for."""

from __future__ import annotations

import importlib
from typing import Any


def url_scheme(location: str | None) -> str:
    """The scheme of `scheme://...`, lower-cased; `file` for none, a path or `file:PATH`."""
    if location is None:
        return "file"
    head, sep, _ = location.partition("://")
    return head.lower() if sep and head.isalnum() else "file"


def import_object(spec: str) -> Any:
    """The object `"package.module:attribute"` names."""
    module, _, attribute = spec.partition(":")
    return getattr(importlib.import_module(module), attribute)
