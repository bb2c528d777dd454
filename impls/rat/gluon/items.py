"""bwd_ws_kernel's work items (impls/rat/gluon/backward.py): which key block and query tiles each CTA takes, and in
which order (NOTES.md b4, b7b). Host code only: numpy over the shape."""
from __future__ import annotations

import numpy as np
import torch
import triton

KEY_BLOCK = 128  # chunk ends per CTA (bwd_ws_kernel's BN): two warpgroups of 64
QUERY_TILE = 64  # query rows per tile (its BMQ)

_ITEMS: dict[tuple, torch.Tensor] = {}


def work_items(T: int, C: int, L: int, seg: int, device: torch.device, first_ahead: bool = False) -> torch.Tensor:
    """bwd_ws_kernel's per-head work items, int32 (n, 3): key block, first query row, 64-row tile count. Key block
    kb's query tiles (rows from the first tile holding a row with c(t) > 128 kb on; with first_ahead for key block
    0 every tile, so that it can start the dq accumulator) are cut at multiples of seg tiles; the items go segment
    by segment from the last, key blocks in turn within one, so the CTAs that run at the same time read the same q
    and dO tiles and add to the same dq rows in L2 (b3's one CTA per key block, each sweeping its tiles alone, drew
    about the full HBM rate: NOTES.md b4). With first_ahead key block 0's item of each segment comes one segment early
    (before the previous segment's other items), so that it has started the segment's dq rows by the time the
    others add to them (STORE_FIRST). Cached per shape and device."""
    key = (T, C, L, seg, str(device), first_ahead)
    if key not in _ITEMS:
        rows = seg * QUERY_TILE
        kb = np.arange(triton.cdiv(C, KEY_BLOCK))
        lo = ((kb * KEY_BLOCK + 1) * L) // QUERY_TILE * QUERY_TILE
        if first_ahead:
            lo[0] = 0  # key block 0 visits every tile: with STORE_FIRST it starts the dq accumulator
        segs = []
        for m in range(triton.cdiv(T, rows) - 1, -1, -1):
            first = np.maximum(lo, m * rows)
            n = (np.minimum(T, (m + 1) * rows) - first + QUERY_TILE - 1) // QUERY_TILE
            sel = n > 0
            segs.append(np.stack([kb[sel], first[sel], n[sel]], 1))  # key block 0 first: it visits every tile
        if first_ahead and segs:
            items = [segs[0][:1]]
            for i, s in enumerate(segs):
                items += ([segs[i + 1][:1]] if i + 1 < len(segs) else []) + [s[1:]]
        else:
            items = segs
        table = np.concatenate(items).astype(np.int32) if items else np.zeros((0, 3), np.int32)
        _ITEMS[key] = torch.from_numpy(table).to(device)
    return _ITEMS[key]


def seen_key_blocks(T: int, C: int, L: int) -> int:
    """How many of the first key blocks (KEY_BLOCK chunk ends each) some query row below T sees (work_items gives
    each of them an item in the last segment; the key blocks after them have none): chunk end j is seen from row
    (j + 1) L on."""
    return min(triton.cdiv(C, KEY_BLOCK), triton.cdiv(max(T - L, 0), KEY_BLOCK * L))
