"""Apply NOTES.md "Seventh session"'s decision rule to call A's train rows (D 128 / L 16) and print the winner's name.

The rule, written before any numbers: the candidate with the lowest sum of train medians over the three T wins,
provided no T is more than 1% slower than rat/gluon-main in the same run; candidates missing a T (error, skipped)
are out. rat/gluon-b7c11 is b7c at head dim 128 (b11 is D 64 only), so it is not a candidate here. With no
candidate left, rat/gluon-main (main's kernels) wins. A table of every candidate goes to stderr.

`python experiments/rat-gluon-next/pick.py /tmp/ra/op-train/results.jsonl`
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

BASE = "rat/gluon-main"
SLOWER = 1.01
NOT_HERE = {"rat/gluon-b7c11"}


def medians(path: Path) -> dict[str, dict[int, float]]:
    """impl -> seq_len -> train median (ms), from the harness's results.jsonl, rows with status ok only."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if row.get("status") == "ok" and row.get("mode") == "train" and row.get("ms_median") is not None:
            out[row["impl"]][int(row["seq_len"])] = float(row["ms_median"])
    return dict(out)


def pick(ms: dict[str, dict[int, float]]) -> str:
    """The winner by the rule; BASE when nothing qualifies or BASE itself is incomplete."""
    base = ms.get(BASE, {})
    if not base:
        return BASE
    best, best_sum = BASE, sum(base.values())
    for impl, row in sorted(ms.items()):
        ok = set(row) >= set(base) and all(row[t] <= SLOWER * base[t] for t in base)
        total = sum(row[t] for t in base) if set(row) >= set(base) else float("inf")
        print(f"{impl:22s} " + " ".join(f"{row.get(t, float('nan')):7.3f}" for t in sorted(base))
              + f"  sum {total:7.3f}  {'ok' if ok else 'out'}", file=sys.stderr)
        if impl not in NOT_HERE and ok and total < best_sum:
            best, best_sum = impl, total
    return best


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_file():
        print("usage: pick.py RESULTS_JSONL (call A's op-train results)", file=sys.stderr)
        sys.exit(2)
    print(pick(medians(Path(sys.argv[1]))))
