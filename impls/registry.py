"""A flat, declarative registry: one ``register(name, "module:Class")`` line per implementation.

Modules are imported lazily, so a missing optional package makes one entry unavailable (with the
reason) instead of breaking ``import impls``.
"""
from __future__ import annotations

import fnmatch
import importlib
import sys
from dataclasses import dataclass

from ratbench.impls.base import Implementation, UnavailableError, default_device
from ratbench.impls.spec import families  # every registered family (impls/catalog.py registers the built-in ones)


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "package.module:ClassName"

    @property
    def family(self) -> str:
        return self.name.split("/", 1)[0]


@dataclass(frozen=True)
class Availability:
    """One row of ``impls.available()``."""

    name: str
    family: str
    available: bool
    reason: str | None
    description: str


_REGISTRY: dict[str, Entry] = {}
_CLASSES: dict[str, type[Implementation]] = {}


class UnknownImplementationError(ValueError):
    pass


def register(name: str, target: str) -> None:
    """Register implementation ``name`` ("<family>/<impl>") found at ``target`` ("module:Class")."""
    family, _, impl = name.partition("/")
    if family not in families() or not impl:
        raise ValueError(f"implementation names are '<family>/<impl>' with a registered family "
                         f"({', '.join(families())}; ratbench.impls.register_family adds one), got {name!r}")
    if name in _REGISTRY:
        raise ValueError(f"implementation {name!r} is registered twice")
    if (new := _namespaced(target)) is not None:
        raise ValueError(f"{name}={target}: ratbench's own modules are imported under ratbench (a second copy "
                         f"of {target.partition(':')[0]} would have its own registry): use {new}")
    _REGISTRY[name] = Entry(name, target)


def _namespaced(target: str) -> str | None:
    """``ratbench.<target>`` when ``target`` names one of ratbench's modules by its top-level name (bench.x,
    impls.x, models.x found in the checkout's folders, not a package of the user's that has such a name)."""
    import importlib.util
    from pathlib import Path

    import ratbench

    top = target.split(".")[0].partition(":")[0]
    if ratbench.CHECKOUT is None or top not in ratbench.PACKAGES:
        return None
    spec = importlib.util.find_spec(top) if top not in sys.modules else sys.modules[top].__spec__
    origin = spec.origin if spec is not None else None
    return f"ratbench.{target}" if origin and Path(origin).resolve().parent == ratbench.CHECKOUT / top else None


def unregister(name: str) -> bool:
    """Forget ``name`` (and its loaded class); True when it was registered."""
    _CLASSES.pop(name, None)
    return _REGISTRY.pop(name, None) is not None


def target_of(name: str) -> str:
    """The "module:Class" that ``name`` was registered with."""
    return _entry(name).target


def bind_class(name: str, cls: type[Implementation]) -> None:
    """Use the class object ``cls`` for the registered ``name`` (a class defined at run time, e.g. by
    bench.api.register_callable, that its "module:Class" target cannot import)."""
    entry = _entry(name)
    if not (isinstance(cls, type) and issubclass(cls, Implementation)) or cls.family != entry.family:
        raise TypeError(f"{cls!r} is not a '{entry.family}' implementation")
    cls.name = name
    _CLASSES[name] = cls


def names(family: str | None = None) -> list[str]:
    """All registered names (optionally of one family), sorted."""
    return sorted(n for n, e in _REGISTRY.items() if family is None or e.family == family)


def _entry(name: str) -> Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownImplementationError(
            f"unknown implementation {name!r}; known: {', '.join(names())}"
        ) from None


def load_class(name: str) -> type[Implementation]:
    """Import and return the class behind ``name``; UnavailableError if its module cannot import."""
    entry = _entry(name)
    if name not in _CLASSES:
        module_name, _, cls_name = entry.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise UnavailableError(f"{name}: cannot import {module_name}: {exc}") from exc
        cls = getattr(module, cls_name)
        if not issubclass(cls, Implementation) or cls.family != entry.family:
            raise TypeError(f"{entry.target} is not a '{entry.family}' implementation")
        cls.name = name
        _CLASSES[name] = cls
    return _CLASSES[name]


def get(name: str) -> Implementation:
    """The implementation object registered as ``name``.

    Raises UnknownImplementationError (a ValueError) for unknown names and UnavailableError when its
    module or a package it needs is missing. Device support is checked when it is called (and by
    ``available(device)``)."""
    cls = load_class(name)
    for mod in cls.requires:
        if importlib.util.find_spec(mod.split(".")[0]) is None:
            raise UnavailableError(f"{name}: optional package '{mod}' is not installed")
    return cls()


def available(device: str | None = None) -> list[Availability]:
    """Every registered implementation with whether it can run on ``device`` (default: this machine's
    best device) and, if not, why."""
    device = device or default_device()
    rows = []
    for name in names():
        try:
            cls = load_class(name)
        except UnavailableError as exc:
            rows.append(Availability(name, _entry(name).family, False, str(exc).split(": ", 1)[1], ""))
            continue
        reason = cls.unavailable_reason(device)
        rows.append(Availability(name, cls.family, reason is None, reason, cls.description))
    return rows


def match(patterns: str | list[str]) -> list[str]:
    """Registered names matching comma-separated names or globs ('rat/*', 'full/sdpa-*').
    A pattern that matches nothing raises UnknownImplementationError."""
    if isinstance(patterns, str):
        patterns = [p.strip() for p in patterns.split(",") if p.strip()]
    out: list[str] = []
    for pat in patterns:
        hits = [n for n in names() if fnmatch.fnmatchcase(n, pat)]
        if not hits:
            raise UnknownImplementationError(f"no implementation matches {pat!r}; known: {', '.join(names())}")
        out.extend(h for h in hits if h not in out)
    return out
