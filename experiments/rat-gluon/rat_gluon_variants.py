"""rat/gluon launch settings beside the default, registered for the harness:

    PYTHONPATH=experiments/rat-gluon python run_bench.py --register rat/gluon-tile=rat_gluon_variants:RATGluonCtaPerTile \
        --impl rat/gluon,rat/gluon-tile --mode train,prefill --seq-len 4k,32k,128k --tokens 128k --device cuda
"""
from __future__ import annotations

import dataclasses

from ratbench.impls.rat.gluon import GLUON_CONFIG, RATGluon


class RATGluonCtaPerTile(RATGluon):
    """rat/gluon with one CTA per 128-row tile instead of persistent CTAs (fwd_ctas = 0; v2 of NOTES.md)."""

    def __init__(self) -> None:
        super().__init__(dataclasses.replace(GLUON_CONFIG, fwd_ctas=0))
