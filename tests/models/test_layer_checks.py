"""models.checks.check_layer, the accuracy gate of layer- and model-level cases, under low-precision
autocast: the decode cache must hold the dtype the projections produce (the H200 paper run of
2026-11-29 lost every rat/triton decode and model case to a float32 cache against fp16/bf16 inputs).
fp16 because the Triton interpreter computes fp16 correctly (bf16 is garbage there)."""
from __future__ import annotations

import pytest
import torch

from ratbench.models.checks import check_layer


@pytest.mark.parametrize(("kind", "impl"), [("rat", "rat/triton"), ("rnn", "rat/triton"),
                                            ("attention", "full/triton"), ("swa", "swa/triton")])
def test_decode_check_under_fp16_autocast(kind: str, impl: str) -> None:
    chk = check_layer(kind, impl, mode="decode", d_model=64, heads=2, head_dim=32, chunk_size=8, window=16,
                      batch=1, seq_len=32, dtype=torch.float16)
    assert chk.error is None
    assert chk.rel_err_decode is not None and chk.rel_err is not None
    assert chk.ok, chk.detail
