"""rat/gluon's Gluon kernels run on the CPU by tests/gluon_emu.py (their own code; shared memory, mbarriers, TMA and
wgmma emulated): the prefill output and the training gradients against the float64 reference by the FlashAttention
rule (bench/fa_rule.py), with the scans and passes around the kernels in Triton's interpreter. Few CTAs
(`sm_count` patched) so that each one runs several tiles and its rings wrap. The last tests show that the
emulator fails the forward kernel with one synchronization wrong: a buffer released before its product is retired,
a product issued before its copy is waited for, a buffer refilled before its TMA store has read it (HazardError),
a wait on the wrong phase (DeadlockError)."""
from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
from pathlib import Path

import gluon_emu
import pytest
import torch

from ratbench.bench.fa_rule import judge
from ratbench.impls.rat.gluon import backward as gb
from ratbench.impls.rat.gluon import forward as gf
from ratbench.impls.rat.gluon import tile as gt
from ratbench.impls.rat.reference import rat_attention
from ratbench.impls.rat.triton import INTERPRET_CONFIG, RATTriton

GLUON = dataclasses.replace(INTERPRET_CONFIG, forward="gluon_ws", backward="gluon_ws", fwd_bm=128, fwd_bn=128,
                            fwd_stages=2)


def _inputs(T: int, H: int, D: int, seed: int = 0, B: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xs = [torch.randn(B, T, H, D, generator=g).half() for _ in range(3)]
    xs.append(torch.sigmoid(torch.randn(B, T, H, D, generator=g) + 2).half())
    return xs


def _emulate(monkeypatch, n_sm: int, module=gf) -> dict[str, gluon_emu.Emulated]:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    kernels = {"fwd": gluon_emu.emulate(module.fwd_ws_kernel), "bwd": gluon_emu.emulate(gb.bwd_ws_kernel)}
    monkeypatch.setattr(module, "fwd_ws_kernel", kernels["fwd"])
    monkeypatch.setattr(gb, "bwd_ws_kernel", kernels["bwd"])
    monkeypatch.setattr(module, "sm_count", lambda device: n_sm)
    return kernels


def _assert_fa_rule(names, ours, x, L: int, rope: bool, do: torch.Tensor | None) -> None:
    """Each of ours within the FlashAttention rule of the reference (float64; fp16 for the bound)."""
    def run(xs, g):
        leaves = [t.detach().clone().requires_grad_(g is not None) for t in xs]
        y = rat_attention(*leaves, L, rope, xs[0].shape[-1] ** -0.5)[0]
        if g is None:
            return [y.detach()]
        return [y.detach()] + [t.detach() for t in torch.autograd.grad(y, leaves, g.to(y.dtype))]
    ref64 = run([t.double() for t in x], None if do is None else do.double())
    low = run(x, do)
    for name, a, r, lo in zip(names, ours, ref64, low):
        v = judge(name, a, r, lo, "float16")
        assert v.ok, (name, v)


@pytest.mark.parametrize("T,L,D,rope,n_sm,B", [(1008, 16, 128, True, 3, 2), (1024, 4, 64, True, 2, 1),
                                               (512, 64, 64, False, 132, 1)])
def test_prefill_forward_emulated(monkeypatch, T, L, D, rope, n_sm, B):
    """fwd_ws_kernel (no lse): T not a multiple of 128 in a batch of 2 (the plain-store epilogue; the last tile's rows
    past T read the next sequence's), two key blocks per tile (the masked and unmasked blocks, the ring wrapping),
    few chunk ends without RoPE."""
    k = _emulate(monkeypatch, n_sm)
    x = _inputs(T, 2, D, B=B)
    with torch.no_grad():
        o = RATTriton(GLUON).forward(*x, chunk_size=L, rope=rope)
    assert len(k["fwd"].launches) == 1 and k["fwd"].launches[0]["args"]["STORE_LSE"] is False
    _assert_fa_rule(["o"], [o], x, L, rope, None)


@pytest.mark.parametrize("T,L,D,n_sm,B", [(1024, 4, 64, 3, 1), (400, 16, 128, 2, 2)])
def test_training_emulated(monkeypatch, T, L, D, n_sm, B):
    """The training forward (lse, RoPE(q) for the backward) and bwd_ws_kernel: o and every gradient; the second
    with T not a multiple of 64 in a batch of 2 (padded query tiles)."""
    k = _emulate(monkeypatch, n_sm)
    x = _inputs(T, 2, D, seed=1, B=B)
    do = torch.randn(x[0].shape, generator=torch.Generator().manual_seed(2)).half()
    leaves = [t.clone().requires_grad_(True) for t in x]
    y = RATTriton(GLUON).forward(*leaves, chunk_size=L)
    y.backward(do)
    assert len(k["fwd"].launches) == 1 and len(k["bwd"].launches) == 1
    _assert_fa_rule(["o", "dq", "dk", "dv", "df"], [y.detach()] + [t.grad for t in leaves], x, L, True, do)


@pytest.mark.parametrize("T0", [600, 512])
def test_prefill_into_the_decode_cache_then_steps(monkeypatch, T0):
    """prefill writes the chunk ends into the decode cache (longer than the prompt's chunks) through fwd_ws_kernel;
    steps from there (rat/triton's step kernel) continue the same sequence: every output within the rule. A prompt
    ending mid-chunk and one ending on a tile."""
    k = _emulate(monkeypatch, 2)
    T, L, D = 640, 16, 64
    x = _inputs(T, 2, D, seed=3)
    impl = RATTriton(GLUON)
    state = impl.init_state(1, 2, D, T, device="cpu", dtype=torch.float16, chunk_size=L)
    with torch.no_grad():
        outs = [impl.prefill(state, *[t[:, :T0] for t in x])]
        outs += [impl.step(state, *[t[:, i] for t in x])[:, None] for i in range(T0, T)]
    assert len(k["fwd"].launches) == 1
    _assert_fa_rule(["o"], [torch.cat(outs, 1)], x, L, True, None)


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _mutant(tmp_path: Path, pattern: str, repl: str, target=gf):
    """impls/rat/gluon/forward.py with one change (a regular expression that matches once) in it or, target=gt, in
    the helpers it imports from tile.py, imported as a module of its own."""
    src, n = re.subn(pattern, repl, Path(target.__file__).read_text())
    assert n == 1, pattern
    (tmp_path / f"{target.__name__.rsplit('.', 1)[1]}_mutant.py").write_text(src)
    if target is gt:  # forward's copy takes its helpers from the mutant tile module
        sys.modules["tile_mutant"] = _load(tmp_path / "tile_mutant.py", "tile_mutant")
        fwd = Path(gf.__file__).read_text().replace("from ratbench.impls.rat.gluon.tile import", "from tile_mutant import")
        (tmp_path / "forward_mutant.py").write_text(fwd)
    return _load(tmp_path / "forward_mutant.py", "forward_mutant")


def _mutant_prefill(monkeypatch, mod, deadlock_s: float = 60.0) -> torch.Tensor:
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    monkeypatch.setattr(mod, "fwd_ws_kernel", gluon_emu.emulate(mod.fwd_ws_kernel, deadlock_s=deadlock_s))
    monkeypatch.setattr(mod, "sm_count", lambda device: 2)
    monkeypatch.setattr(gf, "launch_forward", mod.launch_forward)
    x = _inputs(1024, 1, 64)
    with torch.no_grad():
        return RATTriton(GLUON).forward(*x, chunk_size=4), x


def _mutant_hazard(monkeypatch, tmp_path, pattern: str, repl: str, match: str, target=gf) -> None:
    mod = _mutant(tmp_path, pattern, repl, target)
    with pytest.raises(gluon_emu.HazardError, match=match):
        _mutant_prefill(monkeypatch, mod)


def test_emulator_fails_a_buffer_released_before_its_product(monkeypatch, tmp_path):
    """V's ring buffer released before P V is retired: the loader refills it while the product still reads it."""
    # (_block's two lines, at its 4 spaces: a helper with the same lines deeper in is left as it is)
    _mutant_hazard(monkeypatch, tmp_path, r"\n(    )(acc, p = warpgroup_mma_wait\(num_outstanding=0, deps=\(acc, p\)\))\n"
                   r"(    )(mbarrier\.arrive\(v_empty\.index\(pst\), count=1\))\n", r"\n\1\4\n\3\2\n",
                   "loads by TMA into shared memory that an unretired warpgroup_mma reads", gt)


def test_emulator_fails_a_product_that_does_not_wait_for_its_copy(monkeypatch, tmp_path):
    """S_i issued without waiting for K_i's TMA copy. The race shows from either side, by the threads' timing: the
    product reading the buffer before the copy's wait, or the copy landing under the unretired product (seen in CI
    on a loaded machine)."""
    _mutant_hazard(monkeypatch, tmp_path, r"\n +mbarrier\.wait\(k_ready\.index\(st\), \(\(e0 \+ i\) // STAGES\) & 1\)\n",
                   "\n", "multiplies .* shared memory that a TMA load writes, before waiting"
                   "|loads by TMA into shared memory that an unretired warpgroup_mma reads", gt)


def test_emulator_fails_a_buffer_refilled_before_its_store_read_it(monkeypatch, tmp_path):
    """The q buffer handed back to the loader before the TMA store of o from it has read it."""
    _mutant_hazard(monkeypatch, tmp_path, r"\n( +)tma\.store_wait\(1 if STORE_LSE and STORE_QR else 0\)\n",
                   r"\n\1pass\n", "loads by TMA into shared memory that a TMA store has not read yet")


def test_emulator_fails_a_wait_on_the_wrong_phase(monkeypatch, tmp_path):
    """The loader waiting for the K buffer's release on the phase it has not reached: a deadlock, reported."""
    mod = _mutant(tmp_path, r"mbarrier\.wait\(k_empty\.index\(s\), \(\(e // STAGES\) & 1\) \^ 1\)",
                  "mbarrier.wait(k_empty.index(s), (e // STAGES) & 1)")
    with pytest.raises(gluon_emu.DeadlockError, match="waits forever on an mbarrier"):
        _mutant_prefill(monkeypatch, mod, deadlock_s=3.0)


@pytest.mark.parametrize("fields,mode,T,L,D,constexprs", [
    ({"fwd_exp_poly": 2, "fwd_row_tree": 2}, "train", 1024, 4, 64, {"EXP_POLY": 2, "TREE": 2}),
    ({"fwd_exp_poly": 4, "fwd_row_tree": 0, "fwd_split_masked": False}, "prefill", 1024, 4, 64,
     {"EXP_POLY": 4, "TREE": 0, "SPLIT": False}),
    ({"fwd_self_logit": "off"}, "prefill", 1008, 16, 128, {"SELF_LOGIT": False}),
    ({"fwd_exp_poly": 0}, "train", 640, 8, 64, {"EXP_POLY": 0}),
    ({"bwd_dq_writer": True}, "train", 1024, 4, 64, {}),
    ({"bwd_dq_writer": True}, "train", 1024, 16, 128, {}),
    ({"bwd_dq_writer": True}, "train", 1024, 64, 128, {}),  # one key block, half of it past the chunk ends
    ({"bwd_dq_writer": True, "bwd_dq_acc16": False}, "train", 1024, 16, 128, {}),
    # b25: the 16-bit accumulator beyond two key blocks (512 chunk ends: a tile's share stored, three added)
    ({"bwd_dq_writer": True, "bwd_dq_acc16_max_ends": 1 << 30}, "train", 1024, 2, 64, {}),
    # ... without the writer: the pre pass's zeros and every share in 16 bits, plain and by owners (b22)
    ({"bwd_dq_acc16_plain": True, "bwd_dq_acc16_max_ends": 1 << 30}, "train", 1024, 2, 64, {}),
    ({"bwd_dq_acc16_plain": True, "bwd_dq_acc16_max_ends": 1 << 30, "bwd_dq_owner": True, "bwd_kv_regs": True},
     "train", 1024, 2, 64, {}),
    # b21: K_w and V_w in registers (head dim 64), with and without the dq writer
    ({"bwd_kv_regs": True}, "train", 1024, 4, 64, {}),
    ({"bwd_kv_regs": True, "bwd_dq_writer": True}, "train", 400, 16, 64, {}),
    # b22: the warpgroups take turns at a tile's whole dq share (head dim 64), added by TMA reductions
    ({"bwd_dq_owner": True, "bwd_kv_regs": True}, "train", 1024, 4, 64, {}),
    ({"bwd_dq_owner": True}, "train", 1000, 8, 64, {}),  # tiles past T
    ({"fwd_cross_tile": True}, "prefill", 1024, 4, 64, {"XT": True, "STAGES": 2}),  # two key blocks
    ({"fwd_cross_tile": True, "fwd_xt_stages": 3}, "prefill", 1024, 4, 64, {"XT": True, "STAGES": 3}),
    ({"fwd_cross_tile": True}, "prefill", 1024, 4, 128, {"XT": True}),
    ({"fwd_cross_tile": True}, "prefill", 1024, 64, 128, {"XT": True}),  # one key block
    ({"fwd_cross_tile": True}, "prefill", 1008, 16, 128, {"XT": False}),  # o not by TMA: main's consumers
    ({"fwd_cross_tile": True}, "train", 1024, 4, 128, {"XT": False}),  # the training forward: main's consumers
    ({"fwd_cross_tile": True, "fwd_self_logit": "off"}, "prefill", 1024, 4, 128, {"XT": True, "SELF_LOGIT": False}),
    # f26: f23's consumers in the training forward (lse, RoPE(q) out, the self logit from kt)
    ({"fwd_cross_tile_train": True}, "train", 1024, 4, 128, {"XT": True, "STORE_LSE": True, "STORE_QR": True}),
    ({"fwd_cross_tile_train": True, "fwd_xt_stages": 3}, "train", 1024, 4, 64, {"XT": True, "STAGES": 3}),
    ({"fwd_cross_tile_train": True, "bwd_dq_writer": True}, "train", 1024, 64, 128, {"XT": True}),  # one key block
    # f25's 192-row tiles: o and q_r boxes past T / Tq not stored (T a multiple of 64: o by TMA)
    ({"fwd_wgs": 3}, "train", 1024, 4, 64, {"NWG": 3, "RB": 256, "O_TMA": True}),
    ({"fwd_wgs": 3}, "train", 130, 2, 64, {"NWG": 3, "O_TMA": False}),  # q_r's rows 192..255 zeroed (past the tiles)
    ({"fwd_wgs": 3}, "prefill", 1024, 4, 64, {"NWG": 3, "SELF_LOGIT": True, "O_TMA": True}),
    ({"fwd_wgs": 3, "fwd_self_logit": "off"}, "prefill", 1000, 8, 64, {"NWG": 3, "O_TMA": False}),
    ({"fwd_wgs": 3, "fwd_cross_tile": True}, "prefill", 1024, 4, 64, {"XT": True, "NWG": 2}),  # f23's: two
    ({"fwd_wgs": 3}, "prefill", 1024, 16, 128, {"NWG": 2}),  # head dim 128: two
])
def test_config_variants_emulated(monkeypatch, fields, mode, T, L, D, constexprs):
    """The forward's versions behind RATTritonConfig's switches other than the defaults (f6's other shares of
    polynomial exponentials and none, f8's two-level tree and none, f7 off, main's self logit, f23's prefill
    consumers where they apply, with two and three ring entries, and in training (f26); f25's three consumer warpgroups at head dim 64, not
    beside f23's or at head dim 128) and the backward's
    (b7c's dq writer, with b17's 16-bit accumulator up to 256 chunk ends, beyond (b25) and without it; b21's K and V in
    registers and b22's dq shares by owners at head dim 64): outputs and gradients
    within the rule, each switch reaching the kernel."""
    k = _emulate(monkeypatch, 3)
    cfg = dataclasses.replace(GLUON, **fields)
    x = _inputs(T, 2, D, seed=4)
    if mode == "train":
        do = torch.randn(x[0].shape, generator=torch.Generator().manual_seed(5)).half()
        leaves = [t.clone().requires_grad_(True) for t in x]
        y = RATTriton(cfg).forward(*leaves, chunk_size=L)
        y.backward(do)
        ours, names = [y.detach()] + [t.grad for t in leaves], ["o", "dq", "dk", "dv", "df"]
        bwd = k["bwd"].launches[0]["args"]
        assert bwd["WRITER"] == fields.get("bwd_dq_writer", False)
        assert bwd["KV_REGS"] == fields.get("bwd_kv_regs", False)
        assert bwd["OWNER"] == fields.get("bwd_dq_owner", False)
        acc16 = ((cfg.bwd_dq_writer or cfg.bwd_dq_acc16_plain) and cfg.bwd_dq_acc16
                 and T // L <= cfg.bwd_dq_acc16_max_ends)
        assert bwd["dq_desc"].base.dtype == (torch.float16 if acc16 else torch.float32)
    else:
        do = None
        with torch.no_grad():
            ours, names = [RATTriton(cfg).forward(*x, chunk_size=L)], ["o"]
    args = k["fwd"].launches[0]["args"]
    assert {n: args[n] for n in constexprs} == constexprs
    _assert_fa_rule(names, ours, x, L, True, do)
