"""The softmax loops of rat/gluon's kernels in sm_90 SASS, on the CPU: fwd_ws_kernel in f6-f8's variants (prefill and
the training forward) and bwd_ws_kernel, compiled as their launchers launch them (meta tensors, triton's
GPUTarget("cuda", 90, 32)); per kernel its registers and spills, and
per loop that holds the softmax (16 or more MUFU instructions, the ones that run once per key block or query tile)
its instruction count, MUFU, FSEL and spill instructions and an in-order issue model of one warp through one
iteration (`issue_clocks`).
`PYTHONPATH=. python experiments/rat-gluon-next/sass_loops.py` (KERNELS=bwd: the backward only, 10 s)"""
from __future__ import annotations

import importlib
import re
from collections import Counter

#: latencies (clocks) in the model; others `DEFAULT_LATENCY`. HGMMA, barriers and waits are taken as free: the model
#: is the warp's own work per iteration, not the tensor cores' or a wait for them
LATENCY = {"MUFU": 18, "SHFL": 24, "F2FP": 6, "LDL": 30, "HGMMA": 0, "WARPGROUP": 0, "SYNCS": 0, "BAR": 0}
DEFAULT_LATENCY = 5
MUFU_CLOCKS = 8  # 16 MUFU results per clock per SM: a warp's instruction holds its sub-partition's unit 8 clocks
_LINE = re.compile(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?);")
_NO_DEST = ("ST", "BRA", "SYNCS", "BAR", "WARPGROUP", "HGMMA", "RED", "ATOM", "EXIT", "RET", "CALL")


def instructions(sass: str) -> list[tuple[int, str]]:
    """(address, instruction text without the trailing ';') of each SASS instruction line."""
    return [(int(m.group(1), 16), m.group(2).strip()) for m in map(_LINE.match, sass.splitlines()) if m]


def _opcode(text: str) -> tuple[str, list[int], list[int]]:
    """(opcode, destination registers, source registers); a predicate guard (@P0) is dropped."""
    if text.startswith("@"):
        text = text.split(None, 1)[1]
    op, _, args = text.partition(" ")
    regs = [[int(r) for r in re.findall(r"\bR(\d+)\b", a)] for a in args.split(",")]
    if not regs or op.startswith(_NO_DEST):
        return op, [], [r for a in regs for r in a]
    return op, regs[0], [r for a in regs[1:] for r in a]


def issue_clocks(body: list[str]) -> int:
    """Clocks for one warp to issue `body` in order, one instruction per clock, each once its source registers are
    ready (LATENCY), MUFU instructions MUFU_CLOCKS apart; until the last result is ready."""
    ready: dict[int, int] = {}
    t = mufu_free = 0
    for text in body:
        op, dst, src = _opcode(text)
        base = op.split(".")[0]
        start = max([t] + [ready.get(r, 0) for r in src])
        if base == "MUFU":
            start = max(start, mufu_free)
            mufu_free = start + MUFU_CLOCKS
        for r in dst:
            ready[r] = start + LATENCY.get(base, DEFAULT_LATENCY)
        t = start + 1
    return max([t, *ready.values()])


def softmax_loops(sass: str, min_mufu: int = 16, max_len: int = 1000) -> list[dict]:
    """Loops (a backward branch's target .. the branch) with min_mufu or more MUFU instructions and fewer than max_len
    instructions (the innermost ones): size, MUFU, FSEL, LDL + STL and issue_clocks of one iteration."""
    ins = instructions(sass)
    addr = [a for a, _ in ins]
    out = []
    for i, (a, text) in enumerate(ins):
        m = re.search(r"BRA\b.*?(0x[0-9a-f]+)", text)
        if m and int(m.group(1), 16) < a and int(m.group(1), 16) in addr:
            body = [t for _, t in ins[addr.index(int(m.group(1), 16)):i + 1]]
            ops = Counter(_opcode(t)[0].split(".")[0] for t in body)
            if ops["MUFU"] >= min_mufu and len(body) < max_len:
                out.append({"instructions": len(body), "MUFU": ops["MUFU"], "FSEL": ops["FSEL"],
                            "spill_ops": ops["LDL"] + ops["STL"], "issue_clocks": issue_clocks(body)})
    return out


def _compile(launch, *args, **kw) -> tuple[dict, str]:
    from ratbench.bench.static_gate import _intercept, compile_sm90, sass_stats

    found: list = []
    with _intercept("sass_loops", found):
        launch(*args, **kw)
    ln = found[0]
    fn = getattr(importlib.import_module(ln.module), ln.kernel)
    ck = compile_sm90(fn, ln.signature, ln.constexprs, {(i,): [["tt.divisibility", 16]] for i in ln.attrs},
                      ln.num_warps, ln.num_stages, ln.maxnreg)
    return sass_stats(ck.asm["cubin"])


def _forward_rows(D: int, T: int, H: int, L: int) -> None:
    import torch

    from ratbench.impls.rat.gluon.forward import launch_forward

    meta = torch.device("meta")
    q = torch.empty(1, T, H, D, device=meta, dtype=torch.bfloat16)
    ke = torch.empty(1, H, T // L, D, device=meta, dtype=torch.bfloat16)
    cos, lse = torch.empty(T // L, D // 2, device=meta), torch.empty(H, T, device=meta)
    for kw in ({"split": False, "tree": 0}, {"split": True, "tree": 0}, {"split": True, "tree": 1},
               {"split": True, "tree": 2}, {"split": True, "tree": 1, "exp_poly": 8},
               {"split": True, "tree": 1, "exp_poly": 4}):
        for store_lse in (False, True):
            st, sass = _compile(launch_forward, q, q, q, cos, cos, ke, ke, q, lse, T, H, L, 0.1, True, store_lse,
                                ss=None if store_lse else lse, **kw)
            print(f"fwd D{D} {'train' if store_lse else 'prefill'} {kw}: regs {st['regs']}, spills "
                  f"{st['LDL'] + st['STL']}, loops {softmax_loops(sass)}")


def _backward_rows(D: int, T: int, H: int, L: int) -> None:
    """bwd_ws_kernel: spill instructions, and per softmax loop (instructions, spill instructions, modelled clocks).
    Its versions b7b, b9, b7c, b10 and b11 were compared here before they were measured and removed (NOTES.md
    "Eighth session"; this script at 6a8a497 with that commit's next.patch applied compiles them)."""
    import torch

    from ratbench.impls.rat.gluon.backward import launch_backward

    meta, C = torch.device("meta"), T // L
    q = torch.empty(1, T, H, D, device=meta, dtype=torch.bfloat16)
    qr = torch.empty(H, T, D, device=meta, dtype=torch.bfloat16)
    kk = torch.empty(1, H, C, D, device=meta, dtype=torch.bfloat16)
    acc, ld = torch.empty(H, T, D, device=meta), torch.empty(H, T // 64, 2, 64, device=meta)
    dke = torch.empty(H, C, D, device=meta)
    st, sass = _compile(launch_backward, qr, q, kk, kk, acc, ld, dke, dke, T, L, 0.1, 0.14)
    loops = [(x["instructions"], x["spill_ops"], x["issue_clocks"]) for x in softmax_loops(sass)]
    print(f"bwd D{D}: regs {st['regs']}, spills {st['LDL'] + st['STL']}, loops {loops}")


def main() -> None:
    """KERNELS=bwd or fwd for one of the two (default both)."""
    import os

    kernels = os.environ.get("KERNELS", "fwd,bwd").split(",")
    H, T, L = 2, 4096, 16
    for D in (64, 128):
        if "fwd" in kernels:
            _forward_rows(D, T, H, L)
        if "bwd" in kernels:
            _backward_rows(D, T, H, L)


if __name__ == "__main__":
    main()
