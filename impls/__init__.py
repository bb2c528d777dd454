"""ratbench implementations: full, sliding-window, linear attention and RAT behind one interface.

    from ratbench import impls
    rat = impls.get("rat/reference")
    y = rat.forward(q, k, v, f, chunk_size=16)
    impls.available()   # every implementation, whether it runs here, and why not
    impls.family("rat") # the family's declaration (impls/spec.py); impls.register_family adds one
"""
from ratbench.impls import catalog as _catalog  # noqa: F401  (registers the built-in families and implementations)
from ratbench.impls.base import Implementation, UnavailableError
from ratbench.impls.registry import (
    Availability,
    UnknownImplementationError,
    available,
    bind_class,
    get,
    load_class,
    match,
    names,
    register,
    unregister,
)
from ratbench.impls.spec import FamilyParam, FamilySpec, UnknownFamilyError, families, family, register_family

__all__ = [
    "Availability",
    "FamilyParam",
    "FamilySpec",
    "Implementation",
    "UnavailableError",
    "UnknownFamilyError",
    "UnknownImplementationError",
    "available",
    "bind_class",
    "families",
    "family",
    "get",
    "load_class",
    "match",
    "names",
    "register",
    "register_family",
    "unregister",
]
