"""The speed-ups of a gate run round by round: where `run_bench.py gate` re-measured an A/B in interleaved rounds
(bench/README.md, "A/B of implementations on a power-capped GPU"), its results.jsonl pools the rounds' samples and
rounds.jsonl keeps every round's row. A pooled speed-up of 1.01x can be ten rounds at 1.01x or five at 1.05x and
five at 0.97x; this module tells them apart.

    round_speedups(run_dir, baseline)  ->  one RoundSpeedups per row with a baseline case: its speed-up in each round
    rounds_section(run_dir, baseline)  ->  the report's Markdown section ("" for a run without rounds)

A case's k-th row in rounds.jsonl is its round k (gate runs every case once per round and stops re-running a case
that failed, so a case's rows are its first rounds). Each round is compared as the report compares a run
(bench.report_rows.speedups: the baseline case that differs in the implementation alone).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ratbench.bench import results as R
from ratbench.bench.report_rows import MODE_TITLE, natural, num, speedups, with_series


@dataclasses.dataclass(frozen=True)
class RoundSpeedups:
    """One row's speed-up over its baseline case (baseline median / this median) in each round, in round order;
    None in a round where either of the two was not timed."""
    series: str
    mode: str
    seq_len: int
    batch: int
    speedups: tuple[float | None, ...]

    @property
    def timed(self) -> list[float]:
        return [s for s in self.speedups if s is not None]

    @property
    def faster(self) -> int:
        """Rounds in which this row was faster than its baseline case."""
        return sum(s > 1 for s in self.timed)


def _rounds(run_dir: Path) -> list[list[dict]]:
    """rounds.jsonl's rows split into rounds: a case's k-th row goes to round k."""
    seen: dict[str, int] = {}
    out: list[list[dict]] = []
    for row in R.read_rows(run_dir / R.ROUNDS):
        k = seen.get(row["key"], 0)
        seen[row["key"]] = k + 1
        if k == len(out):
            out.append([])
        out[k].append(row)
    return out


def round_speedups(run_dir: str | Path, baseline: str | None) -> list[RoundSpeedups]:
    """Every non-baseline row of a gate run with a baseline case in some round, with its speed-up per round (sorted
    by mode, series, T). Empty without rounds.jsonl or a baseline."""
    import pandas as pd

    run_dir = Path(run_dir)
    if baseline is None or not (run_dir / R.ROUNDS).is_file():
        return []
    per: dict[str, list[float | None]] = {}
    first: dict[str, dict] = {}
    rounds = _rounds(run_dir)
    for k, rows in enumerate(rounds):
        df = speedups(with_series(pd.DataFrame(rows)), baseline)
        for _, r in df[df.impl != baseline].iterrows():
            first.setdefault(r.key, {"series": r.series, "mode": r["mode"], "seq_len": int(r.seq_len),
                                     "batch": int(r.batch)})
            per.setdefault(r.key, [None] * len(rounds))[k] = num(r.speedup)
    out = [RoundSpeedups(speedups=tuple(v), **first[key]) for key, v in per.items() if any(s is not None for s in v)]
    return sorted(out, key=lambda x: (list(MODE_TITLE).index(x.mode) if x.mode in MODE_TITLE else 9,
                                      natural(x.series), x.seq_len))


def rounds_section(run_dir: str | Path, baseline: str | None) -> str:
    """The report's section on a gate run's rounds: per row, its speed-up over the baseline case in each round, the
    range, and in how many rounds it was faster. "" where there are none."""
    rs = round_speedups(run_dir, baseline)
    if not rs:
        return ""
    n = max(len(r.speedups) for r in rs)
    intro = (f"Each row's speed-up over its `{baseline}` case in each of the {n} interleaved rounds of rounds.jsonl "
             "(the tables above pool the rounds' samples). A row faster in every round, or slower in every round, is "
             "a difference the rounds' order did not make.")
    out = ["## Speed-up per round (gate rounds)", "", intro, "",
           "| implementation | mode | T (B) | per round | lowest - highest | faster in |", "|---|---|---|---|---|---|"]
    for r in rs:
        cells = " ".join("-" if s is None else f"{s:.3f}" for s in r.speedups)
        t = r.timed
        out.append(f"| `{r.series}` | {r.mode} | {r.seq_len} ({r.batch}) | {cells} | {min(t):.3f} - {max(t):.3f} | "
                   f"{r.faster} of {len(t)} |")
    return "\n".join(out) + "\n"
