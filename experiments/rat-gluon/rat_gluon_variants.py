"""rat/gluon launch settings beside the default, registered for the harness:

    PYTHONPATH=experiments/rat-gluon python run_bench.py --register rat/gluon-pp=rat_gluon_variants:RATGluonPingPong \
        --impl rat/gluon,rat/gluon-pp --mode train,prefill --seq-len 4k,32k,128k --tokens 128k --device cuda
"""
from __future__ import annotations

import dataclasses

from ratbench.impls.rat.gluon import GLUON_CONFIG, RATGluon


class RATGluonPingPong(RATGluon):
    """rat/gluon with the two consumer warpgroups taking turns issuing their products (fwd_pingpong)."""

    def __init__(self) -> None:
        super().__init__(dataclasses.replace(GLUON_CONFIG, fwd_pingpong=True))
