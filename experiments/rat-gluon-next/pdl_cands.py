"""f18, b18 and f19 (eighteenth and nineteenth sessions): fwd_ws_kernel as a programmatic dependent launch of
scan_kernel, taking each head once the scan's programs of that head have counted themselves done (f18,
RATTritonConfig.fwd_scan_pdl: rat/gluon-pdl); with it the backward scan as a dependent launch of bwd_ws_kernel, each
head once the kernel's items of that head have counted themselves done (b18, bwd_scan_pdl: rat/gluon-pdl2); and both
with the forward's tiles taken one at a time from a counter (f19, fwd_dynamic: rat/gluon-pdl3), so that CTAs that start
early take more; against rat/gluon, registered beside it for one harness run (call_f19.sh): `PYTHONPATH=.:experiments/
rat-gluon-next python run_bench.py --impl rat/gluon,rat/gluon-pdl,rat/gluon-pdl2,rat/gluon-pdl3 ... --register
rat/gluon-pdl=pdl_cands:Pdl --register rat/gluon-pdl2=pdl_cands:Pdl2 --register rat/gluon-pdl3=pdl_cands:Pdl3`.

Why: the forward's persistent CTAs need every SM's registers, so they cannot start beside scan_kernel's programs;
launched after it, they wait for the scan's last wave (8192 programs of 4 warps at every T of the issue's table,
about 12 waves) and their own launch. As a dependent launch (each scan program lets it start once all have started)
they take SMs as the last wave frees them and work on the heads whose scan is done. The same holds between
bwd_ws_kernel (one CTA per work item, 11-20 waves at the issue's shapes) and the backward scan. But with the snake's
fixed shares the CTA that starts last (on the SM of the scan's last program) still ends the forward: f19 lets the CTAs
that start early take more tiles."""
from __future__ import annotations

import dataclasses

import torch

from ratbench.impls.rat.gluon import RATGluon
from ratbench.impls.rat.triton import RATTritonConfig


class Pdl(RATGluon):
    description = "rat/gluon with the forward as a dependent launch of the scan (fwd_scan_pdl=True, pdl_cands.py)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, fwd_scan_pdl=True)


class Pdl2(RATGluon):
    description = ("rat/gluon with the forward and the backward scan as dependent launches (fwd_scan_pdl=True, "
                   "bwd_scan_pdl=True, pdl_cands.py)")

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, fwd_scan_pdl=True, bwd_scan_pdl=True)


class Pdl3(RATGluon):
    description = ("rat/gluon with the forward and the backward scan as dependent launches and the forward's tiles from "
                   "a counter (fwd_scan_pdl, bwd_scan_pdl, fwd_dynamic: f18, b18, f19; pdl_cands.py)")

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, fwd_scan_pdl=True, bwd_scan_pdl=True, fwd_dynamic=True)


class Dyn(RATGluon):
    description = "rat/gluon with the forward's tiles from a counter (fwd_dynamic=True, f19; pdl_cands.py)"

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, fwd_dynamic=True)


class PdlF(RATGluon):
    description = ("rat/gluon with the forward as a dependent launch of the scan and its tiles from a counter "
                   "(fwd_scan_pdl, fwd_dynamic: f18b, f19; pdl_cands.py)")

    def _config(self, n_chunks: int = 1 << 30, dtype: torch.dtype = torch.bfloat16, *, seq_len: int | None = None,
                chunk_size: int | None = None, head_dim: int | None = None) -> RATTritonConfig:
        base = super()._config(n_chunks, dtype, seq_len=seq_len, chunk_size=chunk_size, head_dim=head_dim)
        return dataclasses.replace(base, fwd_scan_pdl=True, fwd_dynamic=True)


def main() -> None:
    """Print the --register flags."""
    print("--register rat/gluon-pdl=pdl_cands:Pdl  # fwd_scan_pdl=True")
    print("--register rat/gluon-pdl2=pdl_cands:Pdl2  # fwd_scan_pdl=True, bwd_scan_pdl=True")
    print("--register rat/gluon-pdl3=pdl_cands:Pdl3  # and fwd_dynamic=True")
    print("--register rat/gluon-dyn=pdl_cands:Dyn  # fwd_dynamic=True")
    print("--register rat/gluon-pdlf=pdl_cands:PdlF  # fwd_scan_pdl=True, fwd_dynamic=True")


if __name__ == "__main__":
    main()
