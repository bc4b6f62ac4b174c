"""Look-ups by name in the library's registries (methods, systems, experiments)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


def lookup(registry: Mapping[str, T], name: str, kind: str, *, hint: str = "") -> T:
    """``registry[name]``; an unknown name raises a ValueError that lists the known ones."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(registry)) or "(none)"
        raise ValueError(f"unknown {kind} {name!r}; choose one of {known}{hint}.") from None
