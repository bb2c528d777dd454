"""The tiles of fwd_ws_kernel (impls/rat/gluon/forward.py): the order (heads in turn, each head's 128-row tiles
longest first), how the persistent CTAs share it (a snake of fixed shares, or f19's counter, one tile at a time) and
f18's wait for a head's scan. Versions and measurements: impls/rat/gluon/NOTES.md."""
from __future__ import annotations

from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.hopper import mbarrier


@gluon.jit
def head_scanned(ptr, n):
    """Spins until *ptr >= n (acquire, GPU scope: scan_kernel's programs of the head each add 1 after their stores,
    f18), then fences the async proxy so that a TMA copy issued after it reads what they wrote. Returns *ptr."""
    return gl.inline_asm_elementwise(
        "{\n .reg .pred p;\n WAIT:\n ld.acquire.gpu.global.b32 $0, [$1];\n setp.lt.s32 p, $0, $2;\n @p bra WAIT;\n"
        " fence.proxy.async.global;\n}", "=r,l,r", [ptr, n], gl.int32, is_pure=False, pack=1)


@gluon.jit
def kth(j, G, pid):
    """The index in the longest-first order of the CTA's j-th tile in schedule's snake."""
    return j * G + gl.where(j % 2 == 0, pid, G - 1 - pid)


@gluon.jit
def tile(j, G, pid, NT, T, L: gl.constexpr, BN: gl.constexpr):
    """The CTA's j-th tile (schedule's snake): tile_at of its index in the longest-first order."""
    return tile_at(kth(j, G, pid), NT, T, L, BN)


@gluon.jit
def tile_at(k, NT, T, L: gl.constexpr, BN: gl.constexpr):
    """Tile k of the longest-first order (heads in turn, each head's row tiles longest first): its (b*H + h), first
    row, key blocks (j < c(t) of its last row) and unmasked blocks."""
    bh = k // NT
    t0 = (NT - 1 - k % NT) * 128
    hi = (gl.minimum(t0 + 128, T) - 1) // L
    return bh, t0, gl.cdiv(hi, BN), (t0 // L) // BN


@gluon.jit
def schedule(NT, n_tiles):
    """This CTA's tiles: the j-th is wave j's tile pid (even waves) or G - 1 - pid (odd waves, the snake that evens
    out the longest-first order across CTAs). Returns G, pid and how many tiles this CTA takes."""
    G = gl.num_programs(0)
    pid = gl.program_id(0)
    last = gl.cdiv(n_tiles, G) - 1
    x_last = gl.where(last % 2 == 0, pid, G - 1 - pid)
    return G, pid, last + (last * G + x_last < n_tiles).to(gl.int32)


@gluon.jit
def grab_tile(ptr):
    """f19: the next tile of the dynamic order, *ptr += 1 by lane 0 (relaxed, GPU scope), the old value broadcast
    to the warp (the loader's one warp)."""
    return gl.inline_asm_elementwise(
        "{\n .reg .pred p;\n .reg .b32 l;\n mov.u32 l, %laneid;\n setp.eq.u32 p, l, 0;\n mov.b32 $0, 0;\n"
        " @p atom.relaxed.gpu.global.add.u32 $0, [$1], 1;\n shfl.sync.idx.b32 $0, $0, 0, 31, -1;\n}",
        "=r,l", [ptr], gl.int32, is_pure=False, pack=1)


@gluon.jit
def tile_id(ids, q_ready, j):
    """f19: the j-th tile's index in the longest-first order, as the loader wrote it into ids[j % 2] before its
    q_ready arrival (>= n_tiles: no more tiles)."""
    mbarrier.wait(q_ready.index(j % 2), (j // 2) & 1)
    return gl.max(ids.index(j % 2).load(gl.BlockedLayout([1], [32], [4], [0])), 0)
