"""ratbench: one import namespace for the project's packages (``ratbench.bench``, ``ratbench.impls``,
``ratbench.models``), so that an installed ratbench puts one name, ``ratbench``, into site-packages.

Installed (``pip install .``), the three packages lie inside this one (pyproject.toml maps them there). In a
checkout they stay where they are, the repository's top-level folders bench/, impls/ and models/: then this
package's ``__path__`` also holds the repository root, so ``import ratbench.bench`` finds <repo>/bench.
The project imports its own modules only as ``ratbench.<package>...`` (tests/test_layout.py checks it), so
no module is loaded a second time under a top-level name."""
from __future__ import annotations

from importlib import metadata
from pathlib import Path

#: the project's packages, as ``ratbench.<name>``
PACKAGES = ("bench", "impls", "models")
#: ``__version__`` when no ratbench distribution is installed (a checkout run without ``pip install``)
UNKNOWN_VERSION = "0+unknown"

try:
    __version__: str = metadata.version("ratbench")
except metadata.PackageNotFoundError:
    __version__ = UNKNOWN_VERSION


def _checkout_root() -> Path | None:
    """The repository root when this package runs from a checkout (the packages are the root's folders,
    not inside this one); None when it is installed with them inside."""
    here = Path(__file__).resolve().parent
    if all((here / p / "__init__.py").is_file() for p in PACKAGES):
        return None
    root = here.parent
    return root if all((root / p / "__init__.py").is_file() for p in PACKAGES) else None


#: the checkout whose bench/, impls/, models/ this package imports (None: installed)
CHECKOUT: Path | None = _checkout_root()
if CHECKOUT is not None and str(CHECKOUT) not in __path__:
    __path__.append(str(CHECKOUT))
