"""A name -> class registry so config files, the CLI and ``load`` can name components."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["register", "get_component", "registered"]

_REGISTRY: dict[str, dict[str, type]] = {}
T = TypeVar("T", bound=type)


def register(kind: str) -> Callable[[T], T]:
    """Class decorator: register ``cls`` under ``(kind, cls.lookup_name)``."""

    def deco(cls: T) -> T:
        _REGISTRY.setdefault(kind, {})[cls.lookup_name] = cls  # type: ignore[attr-defined]
        return cls

    return deco


def get_component(kind: str, name: str) -> Any:
    """Return the class registered as ``name`` for ``kind``.

    Raises
    ------
    KeyError
        Naming the registered alternatives.
    """
    options = _REGISTRY.get(kind, {})
    if name not in options:
        raise KeyError(f"no {kind} component named '{name}'; registered: {sorted(options)}")
    return options[name]


def registered(kind: str) -> list[str]:
    """Names registered for ``kind``."""
    return sorted(_REGISTRY.get(kind, {}))
