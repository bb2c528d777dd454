"""Data flow over a kernel's sm_90 SASS: wgmma descriptors that ptxas left unwritten.

An HGMMA with both operands in shared memory reads their descriptors from uniform registers: ``gdesc[URn]`` is
URn..URn+3 (A's descriptor, then B's); one with A in registers is not checked. ptxas 12.8 (the
one triton 3.6 and 3.7 bundle) was seen to leave those registers unwritten on one branch of an if / else whose
other branch issues a wgmma of another shape (rat/gluon's f22: impls/rat/gluon/NOTES.md, "Twenty-sixth session"),
and the GPU then faulted with an out-of-range shared address. ``unwritten_hgmma_reads`` finds such reads: registers
that no write reaches along forward paths (branches to a later address, fall-through) from the kernel's entry, so
that on the first pass through the loop around the HGMMA the read has no value on any path. A register that a loop
carries from an earlier pass is fine where some write also reaches it on the first pass (ptxas reuses a descriptor
that the loop's first block computed), so the analysis does not follow back edges.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_INSTR = re.compile(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;")
_PRED = re.compile(r"^@!?U?P\w+\s+")
_JUMP = re.compile(r"(BRA|BRX|JMP|CALL\S*|RET\S*|EXIT|BPT)\b\S*\s*(0x[0-9a-f]+)?")


@dataclass(frozen=True)
class UnwrittenRead:
    """An HGMMA at ``address`` that reads uniform registers ``registers`` (URn numbers) no write reaches."""

    address: int
    instruction: str
    registers: tuple[int, ...]


def parse(sass: str) -> list[tuple[int, str]]:
    """(address, instruction text without its ';') of every instruction in ``cuobjdump -sass`` output."""
    return [(int(m.group(1), 16), m.group(2).strip()) for m in map(_INSTR.match, sass.splitlines()) if m]


def _written(op: str) -> set[int]:
    """Uniform registers an instruction writes: its first operand, with .64 / .WIDE a pair and .128 four."""
    parts = op.split(None, 1)
    if len(parts) < 2:
        return set()
    m = re.match(r"UR(\d+)$", parts[1].split(",")[0].strip())
    if not m:
        return set()
    width = 4 if ".128" in parts[0] else 2 if (".64" in parts[0] or ".WIDE" in parts[0]) else 1
    return {int(m.group(1)) + i for i in range(width)}


def _hgmma_reads(op: str) -> set[int]:
    """URn..URn+3 of an HGMMA with both operands in shared memory; nothing for one with A in registers, whose
    ``gdesc[URn]`` this model does not read right (in Triton's tl kernels URn also holds a float scale)."""
    m = re.search(r"gdesc\[UR(\d+)\]", op)
    if not op.startswith("HGMMA") or not m or re.match(r"HGMMA\S*\s+R\d+,\s*R\d+,", op):
        return set()
    return {int(m.group(1)) + i for i in range(4)}


def _forward_successors(ins: list[tuple[int, str]]) -> list[list[int]]:
    index = {a: i for i, (a, _) in enumerate(ins)}
    out: list[list[int]] = []
    for i, (a, text) in enumerate(ins):
        predicated = bool(_PRED.match(text))
        m = _JUMP.match(_PRED.sub("", text))
        falls = i + 1 < len(ins)
        succ = []
        if m:
            target = int(m.group(2), 16) if m.group(2) else None
            if target is not None and target in index and target > a:
                succ.append(index[target])
            if falls and (predicated or m.group(1).startswith("CALL") or m.group(1) == "BRX"):
                succ.append(i + 1)
        elif falls:
            succ.append(i + 1)
        out.append(succ)
    return out


def unwritten_hgmma_reads(sass: str) -> list[UnwrittenRead]:
    """The HGMMA reads of descriptor registers that no write reaches along forward paths from the entry."""
    ins = parse(sass)
    if not ins:
        return []
    succ = _forward_successors(ins)
    reach: list[set[int] | None] = [None] * len(ins)  # registers some forward path has written before i
    reach[0] = set()
    found = []
    for i, (a, text) in enumerate(ins):  # forward edges only go to later addresses: one pass in order
        cur = reach[i]
        if cur is None:
            continue  # reached only through a back edge
        op = _PRED.sub("", text)
        missing = _hgmma_reads(op) - cur
        if missing:
            found.append(UnwrittenRead(a, op, tuple(sorted(missing))))
        out = cur | _written(op)  # a predicated write may happen
        for s in succ[i]:
            reach[s] = set(out) if reach[s] is None else reach[s] | out
    return found
