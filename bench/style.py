"""One fixed look per implementation, the same in every figure and report: the colour comes from the
implementation's name alone (its family's hue, a shade per implementation), never from its position among
the implementations of one run, so rat/triton is the same red in every figure. The project's own kernels
(<family>/triton, <family>/gluon) and references (<family>/reference) are drawn with solid lines and filled markers, peers
(the libraries we compare against) dashed."""
from __future__ import annotations

import zlib

#: family -> fixed colours of its registered implementations (rat: reds, full: blues, swa: greens,
#: linear: purples); ours are the darkest shades, so the eye finds them first
PALETTE: dict[str, dict[str, str]] = {
    "rat": {"rat/gluon": "#67000d", "rat/triton": "#a50f15", "rat/reference": "#ef3b2c", "rat/flex": "#fc9272"},
    "full": {"full/triton": "#08306b", "full/reference": "#2171b5", "full/flash-attn": "#4292c6",
             "full/fa4": "#6baed6", "full/sdpa-flash": "#1c9fd6", "full/sdpa-cudnn": "#5a7fb8",
             "full/sdpa-efficient": "#9ecae1", "full/sdpa-math": "#7f9fbf", "full/flex": "#3f5f8f"},
    "swa": {"swa/triton": "#00441b", "swa/reference": "#238b45", "swa/flash-attn": "#41ab5d",
            "swa/fa4": "#74c476", "swa/flex": "#2f7f6f"},
    "linear": {"linear/triton": "#3f007d", "linear/reference": "#6a51a3", "linear/fla": "#9e9ac8"},
}
#: a family (or an implementation) not in PALETTE: shades of this colour map, picked by a hash of the name
FAMILY_CMAP = {"rat": "Reds", "full": "Blues", "swa": "Greens", "linear": "Purples"}
OTHER_CMAPS = ("Oranges", "Greys", "YlOrBr", "PuRd")

OURS_SUFFIXES = ("/triton", "/gluon", "/reference")


def family_of(impl: str) -> str:
    return str(impl).split("/", 1)[0]


def is_ours(impl: str) -> bool:
    """The project's own kernels and references (solid lines), as opposed to peers (dashed)."""
    return str(impl).endswith(OURS_SUFFIXES)


def _stable(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def impl_color(impl: str) -> str:
    """The fixed colour of ``impl`` (a hex string): PALETTE, else a shade of its family's colour map chosen
    by a hash of the name (deterministic across runs and processes)."""
    impl = str(impl)
    fam = family_of(impl)
    if impl in PALETTE.get(fam, {}):
        return PALETTE[fam][impl]
    import matplotlib
    from matplotlib.colors import to_hex

    cmap_name = FAMILY_CMAP.get(fam) or OTHER_CMAPS[_stable(fam) % len(OTHER_CMAPS)]
    shade = 0.45 + 0.5 * ((_stable(impl) % 1000) / 999)
    return to_hex(matplotlib.colormaps[cmap_name](shade))


def impl_linestyle(impl: str, variant: int = 0) -> str:
    """Solid (or dash-dot for a second variant) for ours, dashed (or dotted) for peers."""
    return ("-", "-.")[variant % 2] if is_ours(impl) else ("--", ":")[variant % 2]


def impl_marker(impl: str, variant: int = 0) -> str:
    return "osD^v"[variant % 5]
