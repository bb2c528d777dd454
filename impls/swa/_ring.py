"""Ring-buffer prefill and decode shared by the sliding-window peers: SDPA (PyTorch's backend choice)
over the filled slots of the RingCache. Token p sits in slot p % window; the softmax does not care
about slot order, and every cached token is inside the window of the new query."""
from __future__ import annotations

import torch

from ratbench.impls.peer_utils import sdpa_decode
from ratbench.impls.swa.base import RingCache


def ring_fill(state: RingCache, k: torch.Tensor, v: torch.Tensor) -> None:
    """Write the last ``window`` tokens of a prompt (B, T0, H, D) into their slots; set pos = T0."""
    T0, W = k.shape[1], state.window
    keep = torch.arange(max(0, T0 - W), T0, device=k.device)
    state.k[:, :, keep % W] = k[:, keep].transpose(1, 2).to(state.k.dtype)
    state.v[:, :, keep % W] = v[:, keep].transpose(1, 2).to(state.v.dtype)
    state.pos = T0


def ring_step(state: RingCache, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, who: str) -> torch.Tensor:
    W, p = state.window, state.pos
    state.k[:, :, p % W] = k
    state.v[:, :, p % W] = v
    o = sdpa_decode(None, q, state.k, state.v, min(p + 1, W), state.scale, who)
    state.pos += 1
    return o
