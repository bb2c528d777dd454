"""The cost model against counts done by hand (and by brute force over the masks)."""
from __future__ import annotations

import pytest

from ratbench.bench.costs import TRAIN_FACTOR, cost, rat_pairs, swa_pairs
from ratbench.bench.sweep import Case


def case(family, mode, B=1, T=4, H=1, D=2, dtype="float32", **kw):
    impl = f"{family}/reference"
    return Case(impl=impl, mode=mode, batch=B, seq_len=T, heads=H, head_dim=D, dtype=dtype, device="cpu", **kw)


def test_full_flash_attention_convention():
    # B=1, T=4, H=1, D=2: forward 2 * B * H * T^2 * D = 64; train 3.5x; 4 tensors of 8 floats in the forward
    assert cost(case("full", "prefill")).flops == 64
    assert cost(case("full", "train")).flops == 64 * 3.5
    assert cost(case("full", "train")).bytes == 12 * 8 * 4
    assert cost(case("full", "prefill")).bytes == (4 + 2) * 8 * 4  # q k v o + the K/V cache written
    # decode at T - 1 = 3: 4 keys, 4 * B * H * T * D = 32 FLOPs; 3 cached rows of k and v read (2*3*2 floats),
    # new k, v written (4), q k v read (6), o written (2) = 24 floats
    d = cost(case("full", "decode", dtype="bfloat16"))
    assert d.flops == 32 and d.bytes == 24 * 2
    # the anchors' number: T = 131072, B = 1, H = 16, D = 128, fwd + bwd = 3.5 * 2 * B*H*T^2*D
    big = cost(case("full", "train", B=1, T=131072, H=16, D=128, dtype="bfloat16"))
    assert big.flops == pytest.approx(3.5 * 2 * 16 * 131072**2 * 128)


def brute_pairs(T, allowed):
    return sum(1 for t in range(T) for s in range(T) if allowed(t, s))


@pytest.mark.parametrize("T,W", [(1, 1), (5, 2), (3, 10), (16, 16), (17, 4), (64, 7)])
def test_swa_exact_row_sum(T, W):
    assert swa_pairs(T, W) == brute_pairs(T, lambda t, s: t - W < s <= t)


def test_swa_cost_by_hand():
    # T=5, W=2: rows see 1,2,2,2,2 keys = 9 pairs; forward 4 * B*H*D * 9 = 72 with D=2
    c = case("swa", "prefill", T=5, window=2)
    assert cost(c).flops == 72
    assert cost(case("swa", "train", T=5, window=2)).flops == 72 * TRAIN_FACTOR
    assert cost(case("swa", "decode", T=5, window=2)).flops == 4 * 2 * 2  # 2 keys


@pytest.mark.parametrize("T,L", [(8, 4), (16, 1), (12, 3), (16, 16), (64, 16)])
def test_rat_pairs_chunk_states_plus_self(T, L):
    # query t in chunk c attends the final states of chunks j < c and its own running state
    assert rat_pairs(T, L) == sum(t // L + 1 for t in range(T))


def test_rat_cost_by_hand():
    # T=8, L=4, B=H=1, D=2: chunk 0 tokens see 1 key (4 pairs), chunk 1 tokens 2 keys (8): 12 pairs
    # attention 4 * D * 12 = 96; scan (7) + RoPE (6) = 13 FLOPs per element, 8 * 2 elements: 208
    c = case("rat", "prefill", T=8, chunk_size=4)
    assert cost(c).flops == 96 + 208
    assert cost(case("rat", "train", T=8, chunk_size=4)).flops == (96 + 208) * 3.5
    # decode at position 7: chunk 1 -> 2 slots: 4 * D * 2 = 16, + 13 * D = 26
    assert cost(case("rat", "decode", T=8, chunk_size=4)).flops == 16 + 26
    # bytes, float32: q k v f read + o written (5 * 16 floats) + chunk cache (2 * 2 chunks * 2) + running (2 * 2)
    assert cost(c).bytes == (5 * 16 + 8) * 4 + 2 * 2 * 4


def test_rat_matches_anchor_floor():
    # docs/h200-anchors.md: inter-chunk attention fwd 2*B*H*T*(T/L)*D = 4.4e12 at T=128k, L=16, H=16, D=128
    c = case("rat", "prefill", B=1, T=131072, H=16, D=128, chunk_size=16, dtype="bfloat16")
    attention = 2 * 16 * 131072 * (131072 / 16) * 128
    assert attention == pytest.approx(4.4e12, rel=0.01)
    assert cost(c).flops == pytest.approx(attention, rel=1e-3)  # the self term and the scan are small


def test_linear_chunked_form_by_hand():
    # T=128, D=4, chunk 64: per token 2*64*4 (intra, causal half) + 4*16 (q S and k^T v) = 576
    c = case("linear", "prefill", T=128, D=4, decay=False)
    assert cost(c).flops == 128 * 576
    # short sequences: the chunk is the whole sequence
    assert cost(case("linear", "prefill", T=8, D=4, decay=False)).flops == 8 * (2 * 8 * 4 + 64)
    # decode: S update + readout 4 * D^2, + D^2 for the decay; state read and written in float32
    d = cost(case("linear", "decode", T=8, D=4, decay=True, dtype="bfloat16"))
    assert d.flops == 4 * 16 + 16
    assert d.bytes == 2 * 16 * 4 + 4 * 4 * 2 + 4


def test_unknown_family():
    with pytest.raises(ValueError, match="no cost model"):
        cost(Case(impl="moe/x", mode="train", batch=1, seq_len=1, heads=1, head_dim=1, dtype="float32", device="cpu"))


def test_estimate_seconds_orders_cases():
    from ratbench.bench.costs import estimate_seconds

    small = case("full", "train", B=1, T=4096, H=16, D=128, dtype="bfloat16")
    big = case("full", "train", B=1, T=131072, H=16, D=128, dtype="bfloat16")
    small, big = (Case(**{**c.to_dict(), "device": "cuda"}) for c in (small, big))
    assert estimate_seconds(big) > estimate_seconds(small) >= 1.0  # at least the timing budget
    assert estimate_seconds(big, available=False) < 0.1


def test_rat_gluon_counts_the_16_bit_dq_accumulator_where_it_runs():
    """rat/gluon's backward stages count dq's accumulator at 2 bytes where impls.rat.gluon.dq_acc16_used (b17: the
    dq writer, at most 256 chunk ends) and at 4 elsewhere: in the backward kernel (read and written once) and in the
    backward scan (read)."""
    from ratbench.bench.costs import rat_gluon_stage_costs
    from ratbench.impls.rat.gluon import dq_acc16_used

    def stages(T, B):
        c = Case(impl="rat/gluon", mode="train", batch=B, seq_len=T, heads=16, head_dim=128, dtype="bfloat16",
                 device="cuda", chunk_size=16)
        return rat_gluon_stage_costs(c), B * T * 16 * 128

    assert dq_acc16_used(4096, 16, 128) and not dq_acc16_used(8192, 16, 128)
    (s4, n4), (s8, n8) = stages(4096, 32), stages(8192, 16)
    assert n4 == n8
    assert s8["backward"].bytes - s4["backward"].bytes == pytest.approx(2 * (4 - 2) * n4, rel=0.01)
    assert s8["scans"].bytes - s4["scans"].bytes == pytest.approx((4 - 2) * n4, rel=0.01)
