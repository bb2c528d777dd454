"""Do later implementations of a sweep's case run at lower GPU clocks? Over every committed op-level results.jsonl
under reports/ (gate and calibration runs left out), the rows of one shape (mode, T, B, H, D, L, dtype) are put in
the order they started, and each later row's mean SM clock (NVML, sampled during its timed calls) is set against
the first row's. Prints, per mode and T with at least 5 such pairs, the median and mean relative difference and the
share of later rows more than 1% lower. Cited by bench/README.md ("A/B of implementations on a power-capped GPU").

    python experiments/order-clock/order_clock.py [reports]
"""
from __future__ import annotations

import collections
import statistics
import sys
from pathlib import Path

from ratbench.bench.gate import ROUNDS_FILE
from ratbench.bench.results import RESULTS, read_rows


def _rows(path: Path) -> list[dict]:
    """The op-level ok rows of one results file that carry a mean SM clock."""
    return [r for r in read_rows(path)
            if r.get("status") == "ok" and r.get("level") == "op" and r.get("sm_clock_mhz_mean")]


def main(root: str = "reports") -> None:
    diffs: dict[tuple, list[float]] = collections.defaultdict(list)
    for path in sorted(Path(root).rglob(RESULTS)):
        if (path.parent / ROUNDS_FILE).exists():  # a gate's or calibration's pooled rows
            continue
        groups: dict[tuple, list[dict]] = collections.defaultdict(list)
        for r in _rows(path):
            groups[(r["mode"], r["seq_len"], r["batch"], r["heads"], r["head_dim"], r.get("chunk_size"),
                    r["dtype"])].append(r)
        for (mode, T, *_), rows in groups.items():
            rows.sort(key=lambda r: r["started_at"])
            first = rows[0]["sm_clock_mhz_mean"]
            diffs[(mode, T)] += [(r["sm_clock_mhz_mean"] - first) / first for r in rows[1:]]
    print("| mode | T | later rows | median clock vs the first | mean | share > 1% lower |")
    print("| --- | --- | --- | --- | --- | --- |")
    for (mode, T), d in sorted(diffs.items()):
        if len(d) >= 5:
            print(f"| {mode} | {T} | {len(d)} | {statistics.median(d) * 100:+.1f}% | {statistics.mean(d) * 100:+.1f}% | "
                  f"{sum(x < -0.01 for x in d) / len(d):.2f} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
