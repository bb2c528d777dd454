"""PyTorch scaled_dot_product_attention with ONE backend pinned (torch.nn.attention.sdpa_kernel).

Each backend is its own implementation, so a comparison names exactly which kernel ran:
- full/sdpa-flash: FlashAttention-2 (the paper's attention baseline), CUDA, fp16/bf16.
- full/sdpa-cudnn: cuDNN's fused attention (the fastest SDPA backend on our H200), CUDA, fp16/bf16.
- full/sdpa-efficient: the memory-efficient (xformers-style) kernel, CUDA.
- full/sdpa-math: the unfused math path (slow; a reference-grade peer), CPU and CUDA.
A pinned backend that cannot run a configuration raises UnavailableError; SDPA never falls back.
Decode: one query token against the KV cache through the same pinned backend.
"""
from __future__ import annotations

from typing import ClassVar

import torch

from ratbench.impls.full.base import FullAttention, KVCache
from ratbench.impls.full.kv_peer import PromptPrefill
from ratbench.impls.peer_utils import sdpa_decode, sdpa_pinned, to_bhtd


class _SDPA(PromptPrefill, FullAttention):
    backend_name: ClassVar[str] = ""

    @property
    def backend(self):
        from torch.nn.attention import SDPBackend

        return getattr(SDPBackend, self.backend_name)

    def _forward(self, q, k, v, *, causal, scale):
        qh, kh, vh = to_bhtd(q, k, v)
        return sdpa_pinned(self.backend, qh, kh, vh, causal=causal, scale=scale, who=self.name).transpose(1, 2)

    def _step(self, state: KVCache, q, k, v):
        p = state.pos
        state.k[:, :, p] = k
        state.v[:, :, p] = v
        o = sdpa_decode(self.backend, q, state.k, state.v, p + 1, state.scale, self.name)
        state.pos += 1
        return o


class SDPAFlash(_SDPA):
    description = "torch SDPA, FlashAttention-2 backend pinned (the paper's baseline); decode via the same backend"
    backend_name = "FLASH_ATTENTION"
    profile_stages = (("forward", r"flash_fwd"), ("backward", r"flash_bwd"))
    devices = ("cuda",)  # on the CPU this backend is a different (CPU) kernel, not FlashAttention-2
    dtypes = (torch.float16, torch.bfloat16)


class SDPACuDNN(_SDPA):
    description = "torch SDPA, cuDNN backend pinned; decode via the same backend"
    backend_name = "CUDNN_ATTENTION"
    profile_stages = (("forward", r"(?i)fprop|fwd"), ("backward", r"(?i)bprop|bwd|dgrad"))
    devices = ("cuda",)
    dtypes = (torch.float16, torch.bfloat16)


class SDPAEfficient(_SDPA):
    description = "torch SDPA, memory-efficient backend pinned; decode via the same backend"
    backend_name = "EFFICIENT_ATTENTION"
    profile_stages = (("forward", r"fmha_cutlassF|efficient\w*fwd"), ("backward", r"fmha_cutlassB|efficient\w*bwd"))
    devices = ("cuda",)  # no CPU kernel for this backend
    dtypes = (torch.float16, torch.bfloat16, torch.float32)


class SDPAMath(_SDPA):
    description = "torch SDPA, math backend pinned (unfused, slow reference-grade peer)"
    backend_name = "MATH"
