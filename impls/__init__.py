"""ratbench implementations: full, sliding-window, linear attention and RAT behind one interface.

    import impls
    rat = impls.get("rat/reference")
    y = rat.forward(q, k, v, f, chunk_size=16)
    impls.available()   # every implementation, whether it runs here, and why not
"""
from impls import catalog as _catalog  # noqa: F401  (registers the built-in implementations)
from impls.base import Implementation, UnavailableError
from impls.registry import (
    FAMILIES,
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

__all__ = [
    "FAMILIES",
    "Availability",
    "Implementation",
    "UnavailableError",
    "UnknownImplementationError",
    "available",
    "bind_class",
    "get",
    "load_class",
    "match",
    "names",
    "register",
    "unregister",
]
