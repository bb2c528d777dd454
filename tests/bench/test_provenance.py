"""Provenance: every row names its session (run_id), run.json keeps every session's git revision, dirty flag,
versions and machine, resumes on other machines are told apart per row, merges keep every phase's sessions,
and the README's results tables are what bench.readme_tables generates from the committed rows."""
from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ratbench.bench import provenance as P
from ratbench.bench import runner
from ratbench.bench.results import load, read_meta, read_rows
from ratbench.bench.sweep import SweepSpec

ROOT = Path(__file__).resolve().parents[2]


def spec(**kw):
    base = {"impls": ["full/reference"], "modes": ["prefill", "decode"], "seq_lens": [32, 64], "heads": [1],
            "head_dims": [16], "batches": [1], "tokens": None, "dtype": "float32", "device": "cpu", "repeats": 3,
            "min_repeats": 2, "warmup": 1, "case_budget_s": 0.01, "max_call_s": 10.0, "check_accuracy": False}
    base.update(kw)
    return SweepSpec(**base)


def fake_machine(monkeypatch, host: str, rev: str, dirty: bool = False) -> None:
    real = P.collect

    def collect(*a, **kw):
        p = real(*a, **kw)
        p.hostname, p.git_rev, p.git_dirty, p.device_name = host, rev, dirty, f"CPU of {host}"
        return p

    monkeypatch.setattr(P, "collect", collect)


def test_every_row_of_a_cpu_sweep_names_its_session(tmp_path):
    r, cases, done = runner.start(spec(), tmp_path, command="pytest", measure_ceilings=False)
    r.run(cases, skip=done)
    meta = read_meta(tmp_path)
    (s,) = meta["sessions"]
    rows = read_rows(tmp_path)
    assert len(rows) == 4 and {row["run_id"] for row in rows} == {s["run_id"]}
    assert s["kind"] == "start" and s["command"] == "pytest" and s["device"] == "cpu"
    assert s["git_source"] == "git" and len(s["git_rev"]) == 40 and isinstance(s["git_dirty"], bool)
    assert s["torch"] and s["python"] and s["cpu_count"] >= 1 and s["hostname"] and s["cpu_model"]
    assert s["packages"].get("fla-core")  # the fla peer is installed here: its version is on record
    assert meta["git"].split("+")[0] == s["git_rev"]
    assert load(tmp_path).run_id.eq(s["run_id"]).all()


def test_a_finished_session_names_the_peers_it_imported(tmp_path, monkeypatch):
    r, cases, done = runner.start(spec(), tmp_path, command="pytest", measure_ceilings=False)
    rows = r.run(cases, skip=done)
    monkeypatch.delitem(sys.modules, "flash_attn", raising=False)
    monkeypatch.setitem(sys.modules, "fla", importlib.import_module("fla"))  # as linear/fla does on a GPU
    runner.finish(tmp_path, rows)
    (s,) = read_meta(tmp_path)["sessions"]
    assert "fla-core" in s["peers_imported"] and s["packages"]["fla-core"]
    assert "flash-attn" not in s["peers_imported"]


def test_a_resume_on_another_machine_is_told_apart_per_row(tmp_path, monkeypatch):
    fake_machine(monkeypatch, "host-a", "a" * 40)
    r, cases, done = runner.start(spec(), tmp_path, command="first", measure_ceilings=False)
    r.run(cases[:2], skip=done)
    fake_machine(monkeypatch, "host-b", "b" * 40, dirty=True)
    r2, cases2, done2 = runner.start(spec(), tmp_path, command="resume", resume=True, measure_ceilings=False)
    assert len(done2) == 2
    r2.run(cases2, skip=done2)
    meta = read_meta(tmp_path)
    s1, s2 = meta["sessions"]
    assert (s1["hostname"], s1["git_rev"], s1["kind"]) == ("host-a", "a" * 40, "start")
    assert (s2["hostname"], s2["git_rev"], s2["kind"], s2["git_dirty"]) == ("host-b", "b" * 40, "resume", True)
    by_key = {row["key"]: P.session_of(row, meta["sessions"])["hostname"] for row in read_rows(tmp_path)}
    assert sorted(by_key.values()) == ["host-a", "host-a", "host-b", "host-b"]
    assert {by_key[c.key] for c in cases[:2]} == {"host-a"} and {by_key[c.key] for c in cases[2:]} == {"host-b"}
    head = "\n".join(P.header_lines(meta, read_rows(tmp_path)))
    assert "2 machines" in head and "2 git revisions" in head and "uncommitted changes" in head
    assert "host-a" in head and "host-b" in head
    from ratbench.bench.report import write_report

    md = write_report(tmp_path, figures=False).read_text()
    assert "sessions (2;" in md and "**warning**: these rows mix 2 machines" in md


def test_old_results_without_provenance_still_load_and_report():
    run = ROOT / "reports/h200-peers-op-2026-11-29"  # before sessions: rows without run_id, a "resumed" list
    meta, rows = read_meta(run), read_rows(run)
    assert "sessions" not in meta and not any("run_id" in r for r in rows)
    sess = P.sessions(meta)
    assert [s["run_id"] for s in sess][:2] == ["legacy-0", "legacy-1"] and len(sess) == 1 + len(meta["resumed"])
    owners = {P.session_of(r, sess)["run_id"] for r in rows}
    assert len(owners) > 1  # the rows of later sessions are told apart by time
    assert any("sessions (" in line for line in P.header_lines(meta, rows))
    assert load(run).run_id.isna().all()


def test_resuming_an_older_run_keeps_its_first_session(tmp_path):
    r, cases, done = runner.start(spec(), tmp_path, command="first", measure_ceilings=False)
    r.run(cases[:2], skip=done)
    meta = read_meta(tmp_path)  # made old: no sessions, rows without run_id
    del meta["sessions"]
    (tmp_path / "run.json").write_text(json.dumps(meta))
    rows = [{k: v for k, v in row.items() if k != "run_id"} for row in read_rows(tmp_path)]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    r2, cases2, done2 = runner.start(spec(), tmp_path, command="resume", resume=True, measure_ceilings=False)
    r2.run(cases2, skip=done2)
    sess = read_meta(tmp_path)["sessions"]
    assert [s["kind"] for s in sess] == ["legacy", "resume"] and sess[0]["command"] == "first"
    owners = [P.session_of(row, sess)["run_id"] for row in read_rows(tmp_path)]
    assert owners == ["legacy-0", "legacy-0", sess[1]["run_id"], sess[1]["run_id"]]


def _phase(stage: Path, name: str, host: str, monkeypatch, impl: str) -> None:
    fake_machine(monkeypatch, host, host[-1] * 40)
    r, cases, done = runner.start(spec(impls=[impl], modes=["prefill"], seq_lens=[32]), stage / name,
                                  command=f"phase {name}", measure_ceilings=False)
    r.run(cases, skip=done)


def test_merge_keeps_every_phase_sessions(tmp_path, monkeypatch):
    from ratbench.bench.paper import merge_phases

    _phase(tmp_path, "layer", "host-1", monkeypatch, "full/reference")
    _phase(tmp_path, "model", "host-2", monkeypatch, "swa/reference")
    # an older phase: no sessions in run.json, rows without run_id, one resume recorded in "resumed"
    old = tmp_path / "compiled"
    old.mkdir()
    (old / "run.json").write_text(json.dumps({
        "command": "old start", "started_at": "2026-11-29T09:00:00Z", "git": "1111111",
        "device": {"device": "cpu", "name": "old cpu"},
        "resumed": [{"at": "2026-11-29T10:00:00Z", "command": "old resume", "git": "2222222"}]}))
    (old / "results.jsonl").write_text("".join(json.dumps({"key": k, "status": "ok", "started_at": t}) + "\n"
                                               for k, t in (("a", "2026-11-29T09:10:00Z"),
                                                            ("b", "2026-11-29T10:10:00Z"))))
    dest = merge_phases(tmp_path)
    meta = read_meta(dest)
    layer, model = read_meta(tmp_path / "layer"), read_meta(tmp_path / "model")
    ids = [s["run_id"] for s in meta["sessions"]]
    assert layer["sessions"][0]["run_id"] in ids and model["sessions"][0]["run_id"] in ids
    assert "compiled:legacy-0" in ids and "compiled:legacy-1" in ids
    assert {s["hostname"] for s in meta["sessions"]} >= {"host-1", "host-2"}
    rows = read_rows(dest)
    assert len(rows) == 4 and all(r["run_id"] in ids for r in rows)
    assert {r["key"]: r["run_id"] for r in rows if r["key"] in "ab"} == {"a": "compiled:legacy-0",
                                                                           "b": "compiled:legacy-1"}
    assert meta["command"].startswith("merge of layer, compiled, model")


def test_gpu_paper_merge_keeps_every_phase_sessions(tmp_path, monkeypatch):
    stage = tmp_path / "stage"
    for p in ("layer", "model"):
        shutil.copytree(ROOT / "reports/h200-paper" / p, stage / p)
    subprocess.run(["bash", str(ROOT / "scripts/gpu_paper.sh"), "merge", str(stage)], cwd=ROOT, check=True,
                   capture_output=True, env={**__import__("os").environ, "PYTHONPATH": str(ROOT),
                                             "PYTHON": sys.executable})
    meta = read_meta(stage / "all")
    revs = {s["git_rev"] for s in meta["sessions"]}
    assert {"9c37b5c", "1579fce", "d6fa286"} <= revs  # layer, its 128k rerun (run-1579fce.json), model
    rows = read_rows(stage / "all")
    model_rows = [r for r in rows if r.get("level") == "model"]
    assert model_rows and all(r["run_id"].startswith("model:") for r in model_rows)
    rat128 = [r for r in rows if r.get("impl") == "rat/triton" and r.get("seq_len") == 131072
              and r.get("mode") == "train" and r.get("chunk_size") == 16 and r.get("level") == "layer"]
    assert rat128[-1]["run_id"] == "layer:run-1579fce:legacy-0" and round(rat128[-1]["ms_median"]) == 161


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_dirty_detection_in_a_temporary_git_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("RATBENCH_GIT_REV", "from-the-environment")  # ignored where there is a .git
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    _git(repo, "add", "a.py")
    _git(repo, "commit", "-qm", "one")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()
    assert P.git_revision(str(repo)) == head
    (repo / "reports").mkdir()
    (repo / "reports" / "results.jsonl").write_text("{}\n")  # run output: not a change to the code
    assert P.git_revision(str(repo)) == head
    (repo / "new_impl.py").write_text("y = 2\n")  # an untracked source file: dirty
    assert P.git_revision(str(repo)) == head + "+dirty"
    # the environment's claim is kept beside git's answer (a tree copied over a stale .git), never instead
    assert P.git_state(repo)[1:4] == (True, "git (RATBENCH_GIT_REV declares from-the-environment)", ["new_impl.py"])
    assert P.declared_rev({"git_source": P.git_state(repo)[2]}) == "from-the-environment"
    assert P.declared_rev({"git_source": "git"}) is None and P.declared_rev({"git_source": "env"}) is None
    (repo / "new_impl.py").unlink()
    (repo / "a.py").write_text("x = 2\n")  # a changed tracked file: dirty
    assert P.git_revision(str(repo)) == head + "+dirty"


def test_git_revision_without_git(tmp_path, monkeypatch):
    plain = tmp_path / "copy"  # a copy of the tree without .git (a GPU machine)
    plain.mkdir()
    monkeypatch.delenv("RATBENCH_GIT_REV", raising=False)
    monkeypatch.delenv("RATBENCH_GIT_DIRTY", raising=False)
    assert P.git_revision(str(plain)) == P.NO_REV == "unknown (no .git, RATBENCH_GIT_REV unset)"
    monkeypatch.setenv("RATBENCH_GIT_REV", "abc1234")
    assert P.git_state(plain)[:3] == ("abc1234", None, "env")
    monkeypatch.setenv("RATBENCH_GIT_REV", "abc1234+dirty")
    assert P.git_state(plain)[:3] == ("abc1234", True, "env")


def test_a_cpu_session_without_nvml_records_the_cpu():
    p = P.collect("cpu", command="x")
    assert p.gpu_uuid is None and p.driver is None and p.cpu_model and p.cpu_count and p.run_id != P.collect("cpu").run_id


def test_readme_tables_are_generated_from_the_committed_rows():
    from ratbench.bench import readme_tables as T

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert set(T.BEGIN.findall(text)) == set(T.TABLES)
    assert T.regenerate(text) == text, "README.md's tables differ from the rows: run python -m ratbench.bench.readme_tables"
    # the eager RAT cell at 128k is the row the Figure 3 plot shows (the merged run's last row of that case)
    rows = {r["key"]: r for r in read_rows(ROOT / "reports/h200-paper/all")}
    rat = [r for r in rows.values() if r.get("impl") == "rat/triton" and r.get("seq_len") == 131072
           and r.get("mode") == "train" and r.get("chunk_size") == 16 and not r.get("compiled")]
    (cell,) = [line for line in text.splitlines() if line.startswith("| RAT L = 16 (rat/triton), eager |")]
    assert cell.split(" | ")[3] == T.fmt_ms(rat[0]["ms_median"]) == "161"


def test_readme_tables_check_reports_a_drift(tmp_path, capsys):
    from ratbench.bench import readme_tables as T

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    drifted = tmp_path / "README.md"
    drifted.write_text(text.replace("| 94.9 | 111 | 161 |", "| 94.9 | 111 | 168 |"), encoding="utf-8")
    assert T.main([str(drifted), "--check"]) == 1 and "-| RAT L = 16" in capsys.readouterr().out
    assert T.main([str(drifted)]) == 0 and drifted.read_text(encoding="utf-8") == text
    bad = tmp_path / "bad.md"
    bad.write_text("<!-- ratbench:table nope -->\n<!-- /ratbench:table -->\n")
    with pytest.raises(SystemExit) as e:
        T.main([str(bad)])
    assert e.value.code == 2 and "unknown table 'nope'" in capsys.readouterr().err


def test_profile_rows_name_their_session(tmp_path):
    from ratbench.bench import cli as run_bench
    from ratbench.bench.results import PROFILE

    out = tmp_path / "p"
    run_bench.main(["profile", "--impl", "full/reference", "--mode", "prefill", "--seq-len", "32", "--batch", "1",
                    "--heads", "1", "--head-dim", "16", "--device", "cpu", "--threads", "1", "--no-progress",
                    "--no-figures", "--out", str(out)])
    (s,) = read_meta(out)["sessions"]
    assert [r["run_id"] for r in read_rows(out / PROFILE)] == [s["run_id"]]
    assert [r["run_id"] for r in read_rows(out)] == [s["run_id"]]
