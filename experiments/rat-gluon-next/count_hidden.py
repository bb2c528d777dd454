"""b10's count (CPU; the table in NOTES is with next.patch applied, where key block 0's item visits every tile, so a
few more tiles than main's items): per head, bwd_ws_kernel's warpgroup tiles (a 64-row query tile
against one warpgroup's 64 keys of a work item's key block, over work_items' items) and those where no row sees any
of the warpgroup's keys (kmin >= c(t0 + 63)), which b10 runs with the dq product only (1 of 5 products), at L 16 /
64 and 4k / 32k / 128k. impls/rat/gluon/NOTES.md, "Seventh session", has the table.
`PYTHONPATH=. python experiments/rat-gluon-next/count_hidden.py`"""
from __future__ import annotations


def count(T: int, L: int) -> tuple[int, int]:
    """(warpgroup tiles, hidden ones) of one head, in launch_backward's default segments."""
    import torch

    from ratbench.impls.rat.gluon.backward import BMQ, BN, work_items

    C = T // L
    items = work_items(T, C, L, 128 if C >= 2048 else 64, torch.device("cpu")).tolist()
    tiles = hidden = 0
    for kb, first, n in items:
        for i in range(n):
            last_row = first + i * BMQ.value + BMQ.value - 1
            for wg in (0, 1):
                tiles += 1
                hidden += kb * BN.value + 64 * wg >= last_row // L
    return tiles, hidden


def main() -> None:
    print("| L | T | warpgroup tiles | hidden | products saved |")
    print("| --- | --- | --- | --- | --- |")
    for L in (16, 64):
        for T in (4096, 32768, 131072):
            tiles, hidden = count(T, L)
            print(f"| {L} | {T // 1024}k | {tiles:,} | {hidden:,} ({100 * hidden / tiles:.1f}%) | "
                  f"{100 * 4 * hidden / (5 * tiles):.1f}% |")


if __name__ == "__main__":
    main()
