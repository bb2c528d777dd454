"""Shared pieces of the peer implementations (SDPA with one pinned backend, compiled FlexAttention,
block masks cached per shape, optional-package probes).

Nothing here falls back silently: a pinned SDPA backend that refuses a configuration raises
UnavailableError with the reasons PyTorch gives. No dense T x T mask is ever materialised: on CUDA a
block mask is built compiled (``create_block_mask(..., _compile=True)``), on the CPU its block tables are
computed directly from the mask's formula (``cpu_block_mask``).

FlexAttention is compiled on CUDA only (``FLEX_COMPILED_DEVICES``). On the CPU it runs EAGERLY (the
unfused path, which materialises the score matrix) and nothing of it goes through inductor: inductor's
C++ code for flex and for create_block_mask depends on the CPU that compiles it. On one x86 CPU compiled
flex computed wrong numbers (max error 1.33 at T = 40, NaN in others, right at T = 128 and 256, right
eagerly) and on another the compiled block-mask kernel did not compile at all (CppCompileError: "operands
to '?:' have different types VecMask<long int, 2> and VecMask<float, 1>"): issue 14.
"""
from __future__ import annotations

import functools
import importlib.util
import logging
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ratbench.impls.base import UnavailableError

log = logging.getLogger(__name__)


# ----- optional packages -------------------------------------------------------------------------
def has_module(name: str) -> bool:
    """True if ``name`` (dotted allowed) can be imported, without importing more than its parents."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def cuda_capability() -> tuple[int, int] | None:
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_capability()


def sm_count(device: torch.device) -> int | None:
    """Multiprocessors of a CUDA device (132 on an H200; torch caches the properties), None for any other device."""
    if device.type != "cuda":
        return None
    return torch.cuda.get_device_properties(device).multi_processor_count


def fa2_unavailable_reason(device: str) -> str | None:
    """flash-attn 2.x = package ``flash_attn`` with its compiled extension ``flash_attn_2_cuda``
    (flash-attn-4 installs ``flash_attn.cute`` only, which is not flash-attn 2)."""
    if not has_module("flash_attn_2_cuda") or not has_module("flash_attn.flash_attn_interface"):
        return "flash-attn 2.x (package flash_attn with its CUDA extension flash_attn_2_cuda) is not installed"
    cap = cuda_capability()
    if device == "cuda" and cap is not None and cap < (8, 0):
        return f"flash-attn 2 needs an Ampere or newer GPU, this one is sm_{cap[0]}{cap[1]}"
    return None


def fa4_unavailable_reason(device: str) -> str | None:
    """flash-attn-4 (CuTe DSL): ``flash_attn.cute`` plus the ``cutlass`` DSL (nvidia-cutlass-dsl)."""
    if not has_module("flash_attn.cute"):
        return "flash-attn-4 (flash_attn.cute) is not installed (pip install flash-attn-4==4.0.0b36; README.md)"
    if not has_module("cutlass"):
        return "flash-attn-4 needs the CuTe DSL package nvidia-cutlass-dsl (module cutlass), not installed"
    cap = cuda_capability()
    if device == "cuda" and cap is not None and cap[0] not in (9, 10, 11, 12):
        return f"flash-attn-4 runs on Hopper (sm_90) and Blackwell GPUs, this one is sm_{cap[0]}{cap[1]}"
    return None


class FlashAttn2Peer:
    """What flash-attn 2.x supports, shared by the full and SWA peers (put it first among the bases)."""
    devices = ("cuda",)
    dtypes = (torch.float16, torch.bfloat16)
    head_dims = tuple(range(8, 257, 8))  # flash-attn 2: multiples of 8 up to 256
    # flash-attn 2 (flash_fwd_kernel, flash_bwd_*) and 4 (flash_attn.cute: kernel_cutlass_kernel_flash_attncute
    # flash_fwd_sm90FlashAttentionForwardSm90_..., FlashAttentionBackward*)
    profile_stages = (("forward", r"flash_fwd|FlashAttentionForward"), ("backward", r"flash_bwd|FlashAttentionBackward"))

    @classmethod
    def extra_unavailable_reason(cls, device: str) -> str | None:
        return fa2_unavailable_reason(device)


class FlashAttn4Peer(FlashAttn2Peer):
    """What flash-attn-4 (CuTe DSL) supports, shared by the full and SWA peers."""
    head_dims = tuple(range(8, 257, 8))  # sm_90: multiples of 8 up to 256 (sm_100: <= 128, 192, 256)

    @classmethod
    def extra_unavailable_reason(cls, device: str) -> str | None:
        return fa4_unavailable_reason(device)


# ----- SDPA with a pinned backend ----------------------------------------------------------------
_NO_KERNEL = ("No available kernel", "No viable backend")


def sdpa_pinned(
    backend: torch.nn.attention.SDPBackend | None,
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    causal: bool,
    scale: float,
    who: str,
) -> torch.Tensor:
    """F.scaled_dot_product_attention on (B, H, T, D) tensors with exactly ``backend`` enabled
    (None = PyTorch's own choice). A backend that refuses raises UnavailableError naming why."""
    if backend is None:
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
    from torch.nn.attention import sdpa_kernel

    try:
        with sdpa_kernel([backend]):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
    except RuntimeError as exc:
        if not any(s in str(exc) for s in _NO_KERNEL):
            raise
    # collect PyTorch's reasons (it emits them as warnings) for a clear error
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with sdpa_kernel([backend]):
                F.scaled_dot_product_attention(q, k, v, is_causal=causal, scale=scale)
        except RuntimeError:
            pass
    reasons = "; ".join(str(w.message).strip().replace("\n", " ") for w in caught) or "no reason given"
    raise UnavailableError(
        f"{who}: SDPA backend {backend.name} cannot run q{tuple(q.shape)} {q.dtype} on {q.device} "
        f"(causal={causal}); it is pinned, so there is no fallback. PyTorch says: {reasons}"
    )


def sdpa_decode(
    backend: torch.nn.attention.SDPBackend | None,
    q: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    n: int,
    scale: float,
    who: str,
) -> torch.Tensor:
    """One query token (B, H, D) against the first n cached keys/values (B, H, S, D): (B, H, D)."""
    o = sdpa_pinned(backend, q[:, :, None], k_cache[:, :, :n], v_cache[:, :, :n], causal=False, scale=scale,
                    who=who)
    return o[:, :, 0]


# ----- FlexAttention ------------------------------------------------------------------------------
def _no_silent_eager() -> dict:
    """torch.compile settings for the compiled peers. Every new shape recompiles (static shapes), and by
    default dynamo silently runs a function EAGERLY once it has been recompiled 8 times: for flex that
    is an unfused path that materialises the full score matrix. Raise the limit, and fail loudly if
    it is ever hit, instead of falling back."""
    import torch._dynamo.config as cfg

    want = {"recompile_limit": 512, "accumulated_recompile_limit": 4096, "fail_on_recompile_limit_hit": True}
    return {k: v for k, v in want.items() if hasattr(cfg, k)}


def compile_strict(fn: Callable) -> Callable:
    """torch.compile(fn, fullgraph=True, dynamic=False), called under _no_silent_eager()."""
    compiled = torch.compile(fn, fullgraph=True, dynamic=False)
    settings = _no_silent_eager()

    @functools.wraps(fn)
    def call(*args, **kwargs):
        with torch._dynamo.config.patch(**settings):
            return compiled(*args, **kwargs)

    return call


#: device types on which FlexAttention (and its block masks) run compiled; elsewhere (the CPU) eagerly
FLEX_COMPILED_DEVICES = ("cuda",)
#: why the CPU path is eager, for descriptions and logs
FLEX_CPU_EAGER_WHY = ("inductor's C++ FlexAttention is not trusted: wrong results or compile errors "
                      "depending on the x86 CPU, issue 14")


def flex_compiled_on(device: torch.device | str) -> bool:
    """True where FlexAttention runs under torch.compile (CUDA); False on the CPU (eager, see the module doc)."""
    return torch.device(device).type in FLEX_COMPILED_DEVICES


@functools.cache
def compiled_flex() -> Callable:
    """flex_attention under torch.compile (the fused kernel; eager flex is a slow dense path). CUDA only:
    call ``flex(...)``, which picks this or the eager path by device."""
    from torch.nn.attention.flex_attention import flex_attention

    return compile_strict(flex_attention)


def eager_flex(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs):
    """flex_attention without torch.compile (its unfused path: plain PyTorch ops over the full score matrix,
    the mask from ``block_mask.mask_mod``; no inductor). PyTorch's one-time "called without torch.compile"
    performance warning is silenced: on the CPU this is the intended path, not an accident."""
    from torch.nn.attention.flex_attention import flex_attention

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")
        return flex_attention(q, k, v, **kwargs)


def flex(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs):
    """flex_attention on (B, H, T, D) tensors: compiled on CUDA (``compiled_flex``), eager elsewhere
    (``eager_flex``; why: the module doc)."""
    if flex_compiled_on(q.device):
        return compiled_flex()(q, k, v, **kwargs)
    return eager_flex(q, k, v, **kwargs)


def flex_lse_kwargs() -> dict:
    """Ask flex_attention for the log-sum-exp: ``return_aux=AuxRequest(lse=True)`` where it exists
    (torch >= 2.9), else the older ``return_lse=True``."""
    try:
        from torch.nn.attention.flex_attention import AuxRequest
    except ImportError:
        return {"return_lse": True}
    return {"return_aux": AuxRequest(lse=True)}


def split_flex_lse(result) -> tuple[torch.Tensor, torch.Tensor]:
    """(out, lse) from flex_attention's result under either API; lse in natural-log units."""
    out, aux = result
    lse = aux if isinstance(aux, torch.Tensor) else aux.lse
    return out, lse


def _causal_mask(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def _window_mask(window: int):
    def mask(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx < window)

    return mask


def _chunk_mask(chunk_size: int):
    def mask(b, h, q_idx, kv_idx):  # query in chunk q_idx // L sees the final states of chunks j < c
        return q_idx // chunk_size > kv_idx

    return mask


def _mask_mod(kind: str, param: int):
    return {"causal": lambda: _causal_mask, "window": lambda: _window_mask(param),
            "chunk": lambda: _chunk_mask(param)}[kind]()


#: FlexAttention's default sparse block (tile) size, both axes
FLEX_BLOCK = 128


def block_classes(kind: str, param: int, q_len: int, kv_len: int, block: int = FLEX_BLOCK
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(partial, full): int8 (n_q_blocks, n_kv_blocks) tables of the block x block tiles of the mask
    'causal' / 'window' / 'chunk' that are partly / wholly unmasked, computed from the mask's formula over
    each tile's index ranges (O(n_blocks^2), never the T x T mask). As create_block_mask counts them: the
    positions past q_len / kv_len of a last, short tile are masked, so such a tile is never full.
    Every pair (q, kv) of a tile ranges over all integers q - kv in [q_lo - kv_hi, q_hi - kv_lo], and
    q // L over [q_lo // L, q_hi // L]; so a condition holds somewhere / everywhere in the tile iff it
    holds at the range's favourable / unfavourable end."""
    qb = torch.arange(-(-q_len // block), dtype=torch.int64)[:, None] * block
    kb = torch.arange(-(-kv_len // block), dtype=torch.int64)[None, :] * block
    q_lo, q_hi = qb, torch.clamp(qb + block, max=q_len) - 1
    k_lo, k_hi = kb, torch.clamp(kb + block, max=kv_len) - 1
    whole = (qb + block <= q_len) & (kb + block <= kv_len)  # no padding in the tile
    d_lo, d_hi = q_lo - k_hi, q_hi - k_lo  # range of q - kv over the tile
    if kind == "causal":  # q >= kv
        some, every = d_hi >= 0, d_lo >= 0
    elif kind == "window":  # 0 <= q - kv < window
        some = (d_hi >= 0) & (d_lo <= param - 1)
        every = (d_lo >= 0) & (d_hi <= param - 1)
    elif kind == "chunk":  # q // L > kv
        some, every = q_hi // param > k_lo, q_lo // param > k_hi
    else:
        raise ValueError(f"block mask kind must be causal, window or chunk, got {kind!r}")
    every = every & whole
    return (some & ~every).to(torch.int8), every.to(torch.int8)


def _ordered(dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(blocks per row, their column indices first, ascending) of a 0/1 block table, as BlockMask wants."""
    num = dense.to(torch.int32).sum(-1, dtype=torch.int32)
    idx = torch.argsort(dense.to(torch.int32), dim=-1, descending=True, stable=True).to(torch.int32)
    return num[None, None].contiguous(), idx[None, None].contiguous()


def cpu_block_mask(kind: str, param: int, q_len: int, kv_len: int):
    """The CPU BlockMask of ``block_mask``: block tables from ``block_classes`` (no compile, no dense mask),
    the same tables as create_block_mask builds."""
    from torch.nn.attention.flex_attention import BlockMask

    partial, full = block_classes(kind, param, q_len, kv_len)
    return BlockMask.from_kv_blocks(*_ordered(partial), *_ordered(full), BLOCK_SIZE=FLEX_BLOCK,
                                    mask_mod=_mask_mod(kind, param), seq_lengths=(q_len, kv_len))


_BLOCK_MASKS: dict[tuple, object] = {}


def block_mask(kind: str, param: int, q_len: int, kv_len: int, device: torch.device):
    """A BlockMask for 'causal' (param ignored), 'window' (param = window) or 'chunk' (param = chunk
    size; kv are chunk states), broadcast over batch and heads, cached per shape. On CUDA built by
    create_block_mask compiled; on the CPU by ``cpu_block_mask`` (no inductor; module doc)."""
    from torch.nn.attention.flex_attention import create_block_mask

    key = (kind, param, q_len, kv_len, str(device))
    if key not in _BLOCK_MASKS:
        log.debug("building block mask %s", key)
        if flex_compiled_on(device):
            _BLOCK_MASKS[key] = create_block_mask(_mask_mod(kind, param), None, None, q_len, kv_len, device=device,
                                                  _compile=True)
        else:
            _BLOCK_MASKS[key] = cpu_block_mask(kind, param, q_len, kv_len)
    return _BLOCK_MASKS[key]


def flex_unavailable_reason(device: str) -> str | None:
    if not has_module("torch.nn.attention.flex_attention"):
        return f"this torch ({torch.__version__}) has no FlexAttention"
    return None  # the CPU path is eager: no C++ compiler needed


class FlexPeer:
    """What FlexAttention supports, shared by the full, SWA and RAT Flex peers (put it first among the
    bases): every float dtype; the backward only on CUDA (FlexAttention has no CPU backward). Compiled on
    CUDA, eager on the CPU (module doc)."""
    backward_devices = ("cuda",)
    dtypes = (torch.float16, torch.bfloat16, torch.float32)
    # inductor's FlexAttention templates (triton_tem_*), its pointwise / reduction kernels (triton_poi/per/red_*)
    profile_stages = (("flex attention", r"triton_tem_"), ("flex glue", r"triton_(poi|per|red)_"))

    @classmethod
    def extra_unavailable_reason(cls, device: str) -> str | None:
        return flex_unavailable_reason(device)


def to_bhtd(*xs: torch.Tensor) -> list[torch.Tensor]:
    return [x.transpose(1, 2) for x in xs]
