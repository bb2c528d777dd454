"""The cost model: FLOPs and minimum bytes moved, one function per family, written down once (each family's
declaration, impls/<family>/spec.py, names its function here).

Conventions (shared by every family):
- B batch, T tokens, H heads, D head dim, e bytes per element of the case's dtype.
- A multiply-add is 2 FLOPs. q k^T over P (query, key) pairs and P v cost 4 * B * H * D * P.
- train = forward + backward = 3.5 x forward (FlashAttention's convention: the backward is 2.5 x
  the forward, counting the recomputation of the attention matrix).
- prefill = forward. Its minimum bytes also count writing the decode state, which is part of a
  prefill's job.
- decode = one step at position T - 1 with T - 1 tokens in the state.
- Minimum bytes: every input read once and every output written once (train: the forward's q, k,
  v[, f | decay] reads and output write, then a backward that reads the inputs, the output and its
  gradient and writes one gradient per input). Decode: the state read, the new entries written, the
  token's inputs read and its output written. Running states kept in float32 count 4 bytes.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ratbench import impls
from ratbench.bench.sweep import Case, torch_dtype

TRAIN_FACTOR = 3.5
#: chunk size of the chunked form of linear attention the FLOPs are counted for (fla's)
LINEAR_CHUNK = 64


@dataclass(frozen=True)
class Cost:
    flops: float
    bytes: float

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOP per byte."""
        return self.flops / self.bytes if self.bytes else float("nan")


def _e(case: Case) -> int:
    return torch.empty((), dtype=torch_dtype(case.dtype)).element_size()


def _f32(case: Case) -> int:
    return 8 if case.dtype == "float64" else 4


# ----- full attention -----------------------------------------------------------------------------
def full_cost(case: Case) -> Cost:
    """Causal softmax attention, FlashAttention's convention: forward 2 * B * H * T^2 * D FLOPs (half
    of the T x T pairs). Decode: the token at T - 1 attends T keys: 4 * B * H * T * D."""
    B, T, H, D, e = case.batch, case.seq_len, case.heads, case.head_dim, _e(case)
    n = B * T * H * D
    fwd = 2.0 * B * H * T * T * D
    if case.mode == "train":
        return Cost(TRAIN_FACTOR * fwd, 12.0 * n * e)
    if case.mode == "prefill":
        return Cost(fwd, 4.0 * n * e + 2.0 * n * e)  # + K/V cache write
    # decode: read 2 (T - 1) cached rows, write the new k, v, read q, k, v, write o
    return Cost(4.0 * B * H * T * D, float(B * H * D * e * (2 * (T - 1) + 2 + 3 + 1)))


# ----- sliding-window attention -------------------------------------------------------------------
def swa_pairs(T: int, window: int) -> int:
    """Exact (query, key) pairs: sum over rows t of min(t + 1, window)."""
    W = min(window, T)
    return W * (W + 1) // 2 + (T - W) * W


def swa_cost(case: Case) -> Cost:
    """Forward 4 * B * H * D * swa_pairs(T, W) (the exact sum over rows). Decode: min(T, W) keys."""
    B, T, H, D, e, W = case.batch, case.seq_len, case.heads, case.head_dim, _e(case), case.window
    assert W is not None
    n = B * T * H * D
    fwd = 4.0 * B * H * D * swa_pairs(T, W)
    kv = min(T, W)
    if case.mode == "train":
        return Cost(TRAIN_FACTOR * fwd, 12.0 * n * e)
    if case.mode == "prefill":
        return Cost(fwd, 4.0 * n * e + 2.0 * B * kv * H * D * e)  # + ring buffer write
    return Cost(4.0 * B * H * D * kv, float(B * H * D * e * (2 * (kv - 1) + 2 + 3 + 1)))


# ----- linear attention ---------------------------------------------------------------------------
def linear_cost(case: Case) -> Cost:
    """Chunked form with chunk c = min(64, T), per token: intra-chunk causal q k^T and (q k^T) v,
    c * D pairs halved -> 2 * c * D; inter-chunk q S (2 * D^2) and the state update k^T v (2 * D^2).
    Forward = B * H * T * (2 * c * D + 4 * D^2). The decay's elementwise work is not counted.
    Decode: S = exp(decay) S + k v^T and o = q S: 4 * B * H * D^2 (+ B * H * D^2 with decay)."""
    B, T, H, D, e = case.batch, case.seq_len, case.heads, case.head_dim, _e(case)
    f32 = _f32(case)
    c = min(LINEAR_CHUNK, T)
    n = B * T * H * D
    decay_bytes = B * T * H * f32 if case.decay else 0
    fwd = float(B * H * T * (2 * c * D + 4 * D * D))
    state = B * H * D * D * f32
    if case.mode == "train":
        return Cost(TRAIN_FACTOR * fwd, 12.0 * n * e + 3.0 * decay_bytes)
    if case.mode == "prefill":
        return Cost(fwd, 4.0 * n * e + decay_bytes + state)
    flops = 4.0 * B * H * D * D + (B * H * D * D if case.decay else 0)
    return Cost(flops, float(2 * state + 4 * B * H * D * e + (B * H * f32 if case.decay else 0)))


# ----- RAT ----------------------------------------------------------------------------------------
#: elementwise FLOPs per (b, t, h, d): the scan of k and v (f*x_prev + (1-f)*x: 3 each, 1 - f once: 7)
#: and chunk-index RoPE on q and the scanned keys (x*cos + rotate(x)*sin: 3 each: 6)
RAT_ELEMENTWISE = 13


def rat_pairs(T: int, L: int) -> int:
    """(query, key) pairs of RAT's attention: a query in chunk c sees c earlier chunk states and its
    own running state: L * sum_{c < C} (c + 1) = L * C * (C + 1) / 2 with C = T / L."""
    C = T // L
    return L * C * (C + 1) // 2


def rat_cost(case: Case) -> Cost:
    """Forward 4 * B * H * D * rat_pairs(T, L) (inter-chunk attention + the self term) + 13 * B*T*H*D
    (scan and RoPE). For many chunks the attention part tends to the anchors' 2 * B * H * T * (T/L) * D.
    Decode at T - 1: c + 1 = (T - 1) // L + 1 cache slots."""
    B, T, H, D, e, L = case.batch, case.seq_len, case.heads, case.head_dim, _e(case), case.chunk_size
    assert L is not None
    f32 = _f32(case)
    n = B * T * H * D
    C = -(-T // L)
    fwd = 4.0 * B * H * D * rat_pairs(T, L) + RAT_ELEMENTWISE * n
    if case.mode == "train":
        return Cost(TRAIN_FACTOR * fwd, 15.0 * n * e)  # fwd: q k v f read, o write; bwd: 6 reads, 4 grads
    if case.mode == "prefill":
        return Cost(fwd, 5.0 * n * e + 2.0 * B * C * H * D * e + 2.0 * B * H * D * f32)  # + chunk cache, running
    c = (T - 1) // L
    flops = 4.0 * B * H * D * (c + 1) + RAT_ELEMENTWISE * B * H * D
    nbytes = (2 * B * H * c * D * e  # finished chunk states read
              + 2 * 2 * B * H * D * f32  # running kt, vt read and written
              + 2 * B * H * D * e  # slot c written
              + 5 * B * H * D * e)  # q, k, v, f read, o written
    return Cost(flops, float(nbytes))


def cost(case: Case) -> Cost:
    """FLOPs and minimum bytes of one timed call of ``case``: the family's cost model (its declaration's
    ``cost``, impls/spec.py) or, for a layer case, projections + the op (layer_cost)."""
    if case.level == "layer":
        return layer_cost(case)
    try:
        spec = impls.family(case.family)
    except impls.UnknownFamilyError:
        raise ValueError(f"no cost model for family {case.family!r}") from None
    return spec.cost_of(case)


# ----- layer level: projections (models/costs.py) + the op ----------------------------------------------
def op_case(case: Case) -> Case:
    """The op-level case inside a layer case (the RNN: one chunk of T tokens)."""
    L = case.seq_len if case.kind == "rnn" else case.chunk_size
    return dataclasses.replace(case, level="op", kind=None, compiled=None, new_tokens=None, n_layers=None,
                               chunk_size=L)


def layer_cost(case: Case) -> Cost:
    """FLOPs and minimum bytes of one layer call: projections (models/costs.py) + the op (``cost``)."""
    from ratbench.models.costs import layer_dense_bytes, layer_flops

    mixer = cost(op_case(case))
    Dm = case.heads * case.head_dim
    e = torch.empty((), dtype=torch_dtype(case.dtype)).element_size()
    wb = e if case.mode == "decode" or case.dtype == "float64" else 4  # autocast keeps float32 weights
    decay = bool(case.decay) if case.decay is not None else True
    flops = layer_flops(case.kind, case.mode, case.batch, case.seq_len, Dm, case.heads, case.head_dim, mixer.flops,
                        linear_decay=decay)
    nbytes = mixer.bytes + layer_dense_bytes(case.kind, case.mode, case.batch, case.seq_len, Dm, case.heads,
                                             case.head_dim, wb, e, linear_decay=decay)
    return Cost(flops, nbytes)


#: nominal rates for estimates only (never for reported numbers): dense bf16 on an H100/H200-class GPU,
#: a few CPU cores
NOMINAL = {"cuda": (800e12, 4.0e12), "cpu": (1e11, 1e10)}


def estimate_seconds(case: Case, *, budget_s: float = 1.0, min_repeats: int = 3, available: bool = True) -> float:
    """A rough wall-clock estimate of one case (progress bars, balancing shards): a call at 30% of
    the nominal matmul rate or 50% of the copy bandwidth, whichever is slower, times the calls a case
    makes (first, memory, warm-up and at least ``min_repeats`` timed), or the timing budget, plus a
    fixed overhead. Cases that cannot run cost (almost) nothing."""
    if not available:
        return 0.01
    flops_rate, bw = NOMINAL.get(case.device, NOMINAL["cpu"])
    c = cost(case)
    call = max(c.flops / (0.3 * flops_rate), c.bytes / (0.5 * bw))
    return 0.3 + max(budget_s, (3 + min_repeats) * call)


def estimate_cases(cases: Sequence[Case], spec) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Estimated seconds per case key (``estimate_seconds``; 1 s when the model has no formula): the
    progress bar's weights and the shard balance under torchrun."""
    avail: dict[str, bool] = {}
    out = {}
    for c in cases:
        if c.impl not in avail:
            try:
                avail[c.impl] = impls.load_class(c.impl).unavailable_reason(c.device) is None
            except Exception:  # noqa: BLE001 - the run itself reports why
                avail[c.impl] = False
        try:
            out[c.key] = estimate_seconds(c, budget_s=spec.case_budget_s, min_repeats=spec.min_repeats,
                                          available=avail[c.impl])
        except ValueError:
            out[c.key] = 1.0
    return out


# ----- per-stage costs (run_bench.py profile: kernel time grouped into an implementation's stages) -----
#: elementwise FLOPs per (b, t, h, d) of rat/triton's forward scan: the gated recurrence of k and v (7) and
#: chunk-index RoPE of the scanned keys (3); RoPE of q (3) is done by the attention kernels (forward, dq)
RAT_SCAN_ELEMENTWISE = 7 + 3
#: the backward scan (self-term gradients, the reverse recurrence g_l = d_l + f_{l+1} g_{l+1}, dk, dv, df and
#: RoPE's adjoint) is counted as twice the forward scan's elementwise work: an estimate, not a kernel count
RAT_BWD_SCAN_ELEMENTWISE = 2 * RAT_SCAN_ELEMENTWISE


def _rat_sizes(case: Case) -> tuple[int, float, float, float, float]:
    """RAT stage sizes: elements of one (B, T, H, D) tensor, one "T x C/2 x D" product's FLOPs, bytes of the
    chunk-end keys and values, of their float32 gradients, and of one float32 per query row (lse, Delta)."""
    B, T, H, D, L = case.batch, case.seq_len, case.heads, case.head_dim, case.chunk_size
    assert L is not None
    C = -(-T // L)
    return (B * T * H * D, 2.0 * B * H * D * rat_pairs(T, L), 2.0 * B * H * C * D * _e(case),
            2.0 * B * H * C * D * 4, B * H * T * 4.0)


def rat_triton_stage_costs(case: Case) -> dict[str, Cost]:
    """rat/triton's stages as its kernels implement them (impls/rat/NOTES.md, "The floor"): one product
    "T x C/2 x D" is 2 * B*H*D * rat_pairs(T, L) FLOPs (the self term included);
        forward   S = q K^T and P V: 2 products (+ RoPE of q); reads q, kt, vt, the chunk ends, writes o (+ lse)
        dq        S, dP and dq recomputed: 3 products (+ RoPE of q); reads q, o, dO, kt, vt, lse, the chunk ends,
                  writes RoPE(q), dq and Delta (the default dq_first kernel; with bwd_pre + bwd_dq the same work)
        dK/dV     S^T, dV, dP^T, dK: 4 products; reads RoPE(q), dO, lse, Delta once (the minimum: tiles are
                  re-read from L2), the chunk ends, writes their float32 gradients
        scans     forward scan (RAT_SCAN_ELEMENTWISE per element; reads k, v, f, writes kt, vt and the chunk
                  ends, prefill: the running state too) and, in train, the backward scan (estimate above;
                  reads q, k, v, f, kt, vt, dO, lse, Delta and the chunk-end gradients, writes dk, dv, df)
        decode step   the whole decode cost (rat_cost)
    Train counts 9 products where the end-to-end convention (TRAIN_FACTOR) counts 7: the stages say what
    the kernels execute, so their sum is above ``cost(case)``."""
    if case.mode == "decode":
        return {"decode step": rat_cost(case)}
    B, H, D, e = case.batch, case.heads, case.head_dim, _e(case)
    f32 = _f32(case)
    n, prod, ends, dends, rows = _rat_sizes(case)
    train = case.mode == "train"
    scan = Cost(RAT_SCAN_ELEMENTWISE * n, 5.0 * n * e + ends + (0 if train else 2.0 * B * H * D * f32))
    out = {"scans": scan,
           "forward": Cost(2 * prod + 3.0 * n, 4.0 * n * e + ends + (rows if train else 0))}
    if not train:
        return out
    out["scans"] = Cost(scan.flops + RAT_BWD_SCAN_ELEMENTWISE * n,
                        scan.bytes + 10.0 * n * e + 2 * rows + dends)
    out["dq"] = Cost(3 * prod + 3.0 * n, 7.0 * n * e + 2 * rows + ends)
    out["dK/dV"] = Cost(4 * prod, 2.0 * n * e + 2 * rows + ends + dends)
    return out


def _inputs(case: Case) -> int:
    """The (B, T, H, D) inputs of the case's family (q, k, v and rat's f)."""
    return len(impls.family(case.family).inputs)


def forward_backward_costs(case: Case) -> dict[str, Cost]:
    """Any family, for implementations whose stages are "forward", "backward" and "decode step": train splits
    the end-to-end cost by the convention (forward = 1 / TRAIN_FACTOR of the FLOPs, reading the inputs and
    writing the output; backward = the rest), prefill is all "forward", decode all "decode step" (an
    implementation whose decode runs its forward kernel gets the decode cost under "forward" too)."""
    total = cost(case)
    if case.mode == "decode":
        return {"decode step": total, "forward": total}
    if case.mode == "prefill":
        return {"forward": total}
    n = case.batch * case.seq_len * case.heads * case.head_dim
    fwd = Cost(total.flops / TRAIN_FACTOR, (_inputs(case) + 1.0) * n * _e(case))
    return {"forward": fwd, "backward": Cost(total.flops - fwd.flops, total.bytes - fwd.bytes)}


def rat_gluon_stage_costs(case: Case) -> dict[str, Cost]:
    """rat/gluon's stages: rat/triton's scans and forward (its Gluon forward does the same work); in train, where
    impls.rat.gluon.gluon_backward_used routes the backward to its Gluon kernel (b5, impls/rat/gluon/NOTES.md):
        forward       also writes RoPE(q) for the backward (impls.rat.triton.forward_writes_qr)
        bwd pre/post  bwd_ws_pre_kernel (reads o, dO, lse; writes Delta twice, lse and the float32 dq accumulator's
                      start, zeros, except where impls.rat.gluon.dq_writer_used: the first share stores): a memory
                      pass. Where the backward scan does not finish dq (the two-level scans,
                      impls.rat.triton.scan_finishes_dq) it also reads q, kt and vt for dq's self term, and
                      bwd_dq_post_kernel reads the accumulator and writes dq; without the forward's RoPE(q) it
                      reads q and writes RoPE(q)
        backward      bwd_ws_kernel: S^T, dP^T, dV, dK and dq's shares dS K, 5 products; reads RoPE(q), dO, lse and
                      Delta once (the minimum; tiles are re-read from L2), the chunk ends, writes their float32
                      gradients; the dq accumulator's reductions run in L2 and count once (read and written), in
                      float32 or, where impls.rat.gluon.dq_acc16_used, in the inputs' 16-bit dtype (b17)
        scans         rat/triton's, and where the backward scan finishes dq: reads the accumulator, writes dq
    elsewhere rat/triton's stages."""
    from ratbench.impls.rat.gluon import GLUON_BWD_CONFIG, dq_acc16_used, dq_writer_used, gluon_backward_used
    from ratbench.impls.rat.triton import forward_writes_qr, scan_finishes_dq

    out = rat_triton_stage_costs(case)
    L = case.chunk_size
    if case.mode != "train" or L is None or not gluon_backward_used(case.seq_len, L, case.head_dim):
        return out
    e = _e(case)
    n, prod, ends, dends, rows = _rat_sizes(case)
    del out["dq"], out["dK/dV"]
    by_scan = scan_finishes_dq(GLUON_BWD_CONFIG, case.batch, case.heads, case.seq_len, L)
    qr_fwd = forward_writes_qr(GLUON_BWD_CONFIG)
    pre_flops, pre_bytes = 2.0 * n, 2.0 * n * e + 4 * rows + 4.0 * n
    if not qr_fwd or not by_scan:  # it reads q for RoPE(q) or for dq's self term
        pre_bytes += n * e
    if not qr_fwd:  # ... and writes RoPE(q)
        pre_bytes += n * e
    if by_scan and dq_writer_used(case.seq_len, L, case.head_dim):  # b7b's store-first accumulator: no zeros
        pre_bytes -= 4.0 * n
    acc = float(e) if by_scan and dq_acc16_used(case.seq_len, L, case.head_dim) else 4.0  # the accumulator's bytes
    if by_scan:
        out["scans"] = Cost(out["scans"].flops + 4.0 * n, out["scans"].bytes + acc * n + n * e)
    else:
        pre_flops, pre_bytes = pre_flops + 4.0 * n, pre_bytes + 2.0 * n * e + 4.0 * n + n * e
    if qr_fwd:
        out["forward"] = Cost(out["forward"].flops, out["forward"].bytes + n * e)
    out["bwd pre/post"] = Cost(pre_flops, pre_bytes)
    out["backward"] = Cost(5 * prod, 2.0 * n * e + 2 * rows + ends + dends + 2 * acc * n)
    return out


#: stage cost models of one implementation (the exact registry name; rat/gluon runs rat/triton's stages with its
#: own forward kernel, and its own backward where it routes there); the others get their family's
#: (its declaration's ``stage_cost``, impls/spec.py); stages without one get time only
STAGE_COST_MODELS = {"rat/triton": rat_triton_stage_costs, "rat/gluon": rat_gluon_stage_costs}


def stage_costs(case: Case) -> dict[str, Cost]:
    """FLOPs and minimum bytes per stage name of one timed call of ``case`` ({} without a model: op level only)."""
    if case.level != "op":
        return {}
    fn = STAGE_COST_MODELS.get(case.impl)
    return fn(case) if fn else impls.family(case.family).stage_costs_of(case)
