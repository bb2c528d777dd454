"""Where each row was measured: one ``Provenance`` per session (a run's start and every resume).

A session is one process that appended rows to a run directory. ``collect`` reads its git revision (and
whether the tree had uncommitted changes), the versions of torch, Triton, CUDA, cuDNN, Python and of every
installed peer package, and the machine (GPU name, UUID and driver; on the CPU the CPU model and core count;
the hostname). run.json keeps the list of sessions (``meta["sessions"]``, oldest first) and every row names
its session in its ``run_id`` column, so a row is tied to its machine, revision and versions after resumes
on other machines and after merges of several runs (bench/paper.py ``merge_phases``).

Rows and run.json files written before this existed carry no ``run_id`` and no ``sessions``: ``sessions``
rebuilds the sessions from the old fields (``started_at``, ``git``, ``device`` and the ``resumed`` list; a
resumed session's machine and versions were not recorded) and ``session_of`` ties such a row to the last
session that started before the row did (the same rule a row of a torchrun rank, which has no run_id, gets).

Git revision: ``git rev-parse HEAD`` of the ratbench checkout when it has .git; the environment variable
``RATBENCH_GIT_REV`` only where there is no .git (a copy of the tree on a GPU machine; a ``+dirty`` suffix
there, or ``RATBENCH_GIT_DIRTY=1``, marks uncommitted changes); otherwise the revision says so, never "" or
"HEAD". Dirty: ``git status --porcelain`` shows a change to a tracked file, or an untracked file that git
does not ignore outside reports/ (results and logs land under reports/ during a run; a new source file
anywhere else may change what runs).
"""
from __future__ import annotations

import logging
import os
import platform
import secrets
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
NO_REV = "unknown (no .git, RATBENCH_GIT_REV unset)"
#: untracked files under these folders do not make the tree dirty (a run writes its results there)
UNTRACKED_OK = ("reports/",)
#: distribution name -> what the implementations import; recorded when installed
PEER_PACKAGES = {
    "fla-core": "fla", "flash-linear-attention": "fla", "flash-attn-4": "flash_attn.cute",
    "flash-attn": "flash_attn", "nvidia-cutlass-dsl": "cutlass", "quack-kernels": "quack",
    "nvidia-ml-py": "pynvml", "numpy": "numpy",
}


@dataclass
class Provenance:
    """One session of a run: identity, code revision, versions and machine."""

    run_id: str
    started_at: str
    #: "start", "resume", or "legacy" (rebuilt from a run.json written before sessions were recorded)
    kind: str
    command: str | None
    git_rev: str
    #: None: unknown (no .git and no RATBENCH_GIT_DIRTY / "+dirty")
    git_dirty: bool | None
    #: "git" (rev-parse in the checkout), "env" (RATBENCH_GIT_REV), "none"
    git_source: str
    device: str | None
    device_name: str | None
    gpu_uuid: str | None = None
    driver: str | None = None
    cpu_model: str | None = None
    cpu_count: int | None = None
    hostname: str | None = None
    python: str | None = None
    torch: str | None = None
    triton: str | None = None
    cuda: str | None = None
    cudnn: int | None = None
    #: installed peer distributions and their versions (PEER_PACKAGES)
    packages: dict[str, str] = field(default_factory=dict)
    #: of those, the ones whose module the session imported (set when the session finishes; None before)
    peers_imported: list[str] | None = None
    #: the first changed paths when dirty (at most 20)
    dirty_files: list[str] = field(default_factory=list)
    #: merges (bench/paper.py): the phase (run directory) the session came from
    phase: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def new_run_id() -> str:
    """Unique per session: UTC time stamp + 6 random hex digits, e.g. 20261204T061500Z-3fa9c1."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


# ----- git ----------------------------------------------------------------------------------------
def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None


def git_state(path: str | Path | None = None) -> tuple[str, bool | None, str, list[str]]:
    """(revision, dirty, source, changed paths) of the checkout at ``path`` (default: ratbench's root)."""
    root = Path(path) if path is not None else REPO_ROOT
    rev = _git(["rev-parse", "HEAD"], root)
    if rev is not None and rev.returncode == 0 and rev.stdout.strip():
        st = _git(["status", "--porcelain", "--untracked-files=all"], root)
        if st is None or st.returncode != 0:
            return rev.stdout.strip(), None, "git", []
        changed = []
        for line in st.stdout.splitlines():
            code, name = line[:2], line[3:]
            if code == "??" and name.startswith(UNTRACKED_OK):
                continue
            changed.append(name)
        head, env = rev.stdout.strip(), os.environ.get("RATBENCH_GIT_REV", "").strip()
        source = "git"
        if env and not head.startswith(env.removesuffix("+dirty")):
            # git decides, but a copy of a newer tree over a stale .git (the GPU machines' copies) says
            # which revision it was copied from: kept beside git's answer
            source = f"{DECLARES}{env})"
        return head, bool(changed), source, changed[:20]
    env = os.environ.get("RATBENCH_GIT_REV", "").strip()
    if env:
        return _env_state(env)
    has_git = (root / ".git").exists()
    return (f"unknown (git rev-parse failed in {root})" if has_git else NO_REV), None, "none", []


def _env_state(env: str) -> tuple[str, bool | None, str, list[str]]:
    """RATBENCH_GIT_REV (``<rev>`` or ``<rev>+dirty``) and RATBENCH_GIT_DIRTY as a git_state tuple."""
    dirty: bool | None = None
    if env.endswith("+dirty"):
        env, dirty = env.removesuffix("+dirty"), True
    flag = os.environ.get("RATBENCH_GIT_DIRTY", "").strip().lower()
    if flag in ("1", "true", "yes"):
        dirty = True
    elif flag in ("0", "false", "no") and dirty is None:
        dirty = False
    return env, dirty, "env", []


#: how a session's git_source keeps RATBENCH_GIT_REV beside git's own answer: "git (RATBENCH_GIT_REV declares <rev>)"
DECLARES = "git (RATBENCH_GIT_REV declares "


def declared_rev(session: dict) -> str | None:
    """The revision RATBENCH_GIT_REV declared where git answered differently (a stale .git), else None."""
    source = session.get("git_source") or ""
    return source.removeprefix(DECLARES).removesuffix(")") if source.startswith(DECLARES) else None


def git_label(rev: str | None, dirty: bool | None) -> str:
    """A revision as one string: ``abc1234`` (12 digits), ``abc1234+dirty``, ``abc1234 (dirty?)`` when unknown."""
    if not rev:
        return NO_REV
    short = rev[:12] if len(rev) >= 12 and all(c in "0123456789abcdef" for c in rev[:12]) else rev
    return short + ("+dirty" if dirty else "" if dirty is False else " (dirty unknown)")


# ----- versions and machine -----------------------------------------------------------------------
def peer_versions() -> dict[str, str]:
    """Installed peer distributions (PEER_PACKAGES) and their versions."""
    out = {}
    for dist in PEER_PACKAGES:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def peers_imported() -> list[str]:
    """The installed peer distributions whose module this process imported (the peers a session used)."""
    return [dist for dist, mod in PEER_PACKAGES.items() if mod in sys.modules and _installed(dist)]


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
        return True
    except metadata.PackageNotFoundError:
        return False


def collect(device: str, *, command: str | None = None, kind: str = "start", info: object | None = None,
            path: str | Path | None = None) -> Provenance:
    """This session's provenance; ``info`` is bench.device.describe(device) when the caller has it."""
    from ratbench.bench import device as D

    di = info if info is not None else D.describe(device)
    rev, dirty, source, changed = git_state(path)
    nv = getattr(di, "nvml", {}) or {}
    cpu = D.cpu_name() or platform.processor() or platform.machine()
    uuid = nv.get("uuid")
    if uuid is None and device == "cuda":
        uuid = _torch_uuid()
    return Provenance(
        run_id=new_run_id(), started_at=D.now_utc(), kind=kind, command=command, git_rev=rev, git_dirty=dirty,
        git_source=source, device=device, device_name=getattr(di, "name", None), gpu_uuid=uuid,
        driver=nv.get("driver"), cpu_model=cpu, cpu_count=os.cpu_count(), hostname=platform.node(),
        python=sys.version.split()[0], torch=getattr(di, "torch", None), triton=getattr(di, "triton", None),
        cuda=getattr(di, "cuda", None), cudnn=getattr(di, "cudnn", None), packages=peer_versions(),
        dirty_files=changed,
    )


def _torch_uuid() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            u = str(torch.cuda.get_device_properties(torch.cuda.current_device()).uuid)
            return u if u.startswith("GPU-") else "GPU-" + u
    except Exception as exc:  # noqa: BLE001 - a torch without the uuid property
        log.debug("no GPU UUID from torch: %s", exc)
    return None


# ----- reading sessions back ----------------------------------------------------------------------
def sessions(meta: dict, *, prefix: str = "") -> list[dict]:
    """The sessions of a run.json, oldest first. Older run.json files (no ``sessions``): rebuilt from
    ``started_at``/``git``/``device`` (the first session) and ``resumed`` (one per resume, machine and versions
    not recorded), with run ids ``<prefix>legacy-<i>``."""
    if meta.get("sessions"):
        return list(meta["sessions"])
    if not meta:
        return []
    dev = meta.get("device") or {}
    nv = dev.get("nvml") or {}

    def legacy(i: int, at: object, command: object, git: object, first: bool) -> dict:
        g = str(git) if git else ""
        rev, dirty = (g.removesuffix("+dirty"), True) if g.endswith("+dirty") else (g, None)
        if rev in ("", "HEAD", "unknown", "None"):
            rev = f"unknown (recorded as {g!r})"
        p = Provenance(run_id=f"{prefix}legacy-{i}", started_at=str(at or ""), kind="legacy",
                       command=None if command is None else str(command), git_rev=rev, git_dirty=dirty,
                       git_source="legacy", device=dev.get("device"),
                       device_name=dev.get("name") if first else None)
        if first:
            p.driver, p.hostname, p.cpu_count = nv.get("driver"), dev.get("hostname") or None, dev.get("cpu_count")
            p.python, p.torch, p.triton, p.cuda, p.cudnn = (dev.get(k) for k in ("python", "torch", "triton", "cuda",
                                                                                 "cudnn"))
        return p.to_dict()

    out = [legacy(0, meta.get("started_at"), meta.get("command"), meta.get("git"), True)]
    for i, r in enumerate(meta.get("resumed") or [], 1):
        out.append(legacy(i, r.get("at"), r.get("command"), r.get("git"), False))
    return out


def session_of(row: dict, sess: list[dict]) -> dict | None:
    """The session a row belongs to: by its ``run_id``; a row without one (older files, torchrun ranks) by
    time: the last session that started before the row did (same second: the earlier session)."""
    rid = row.get("run_id")
    if isinstance(rid, str) and rid:
        for s in sess:
            if s.get("run_id") == rid:
                return s
    started = row.get("started_at")
    if not sess:
        return None
    if not isinstance(started, str) or not started:
        return sess[0]
    # times have 1 s resolution: a row that started in the same second as a session goes to the earlier one
    before = [s for s in sess if str(s.get("started_at") or "") < started]
    if before:
        return max(before, key=lambda s: str(s.get("started_at") or ""))
    same = [s for s in sess if str(s.get("started_at") or "") == started]
    return same[0] if same else sess[0]


def machine(s: dict) -> str:
    """A session's machine in words: the GPU (name, UUID) or the CPU and host; 'not recorded' for resumes of
    older runs."""
    if not s.get("device_name") and not s.get("hostname"):
        return "not recorded"
    if s.get("device") == "cuda":
        return f"{s.get('device_name')} {s.get('gpu_uuid') or '(UUID not recorded)'}, driver {s.get('driver')}"
    return f"{s.get('device_name') or s.get('cpu_model')} ({s.get('cpu_count')} cores) on {s.get('hostname')}"


def machine_key(s: dict) -> str | None:
    """What tells machines apart: the GPU UUID, else host + CPU; None when not recorded."""
    if s.get("gpu_uuid"):
        return str(s["gpu_uuid"])
    if s.get("hostname"):
        return f"{s.get('hostname')}/{s.get('device_name') or s.get('cpu_model')}"
    return None


def header_lines(meta: dict, rows: list[dict]) -> list[str]:
    """report.md's provenance lines: each session (machine, revision, dirty, versions, rows) when there is more
    than one, a warning when the rows mix machines or revisions or come from a dirty tree."""
    sess = sessions(meta)
    if not sess:
        return []
    counts: dict[str, int] = {}
    for r in rows:
        s = session_of(r, sess)
        if s is not None:
            counts[s["run_id"]] = counts.get(s["run_id"], 0) + 1
    used = [s for s in sess if counts.get(s["run_id"])] or sess[:1]
    out = []

    def versions(s: dict) -> str:
        v = [f"{k} {s[k]}" for k in ("torch", "triton", "cuda", "cudnn") if s.get(k)]
        v += [f"{k} {x}" for k, x in (s.get("packages") or {}).items() if k not in ("numpy", "nvidia-ml-py")]
        return ", ".join(v) or "versions not recorded"

    def git(s: dict) -> str:
        src = s.get("git_source") or ""
        note = f" ({src.removeprefix('git (').removesuffix(')')})" if src.startswith("git (") else ""
        return f"`{git_label(s.get('git_rev'), s.get('git_dirty'))}`{note}"

    if len(sess) == 1:
        s = sess[0]
        out.append(f"- session `{s['run_id']}`: git {git(s)}, "
                   f"{machine(s)}; {versions(s)}")
    else:
        out.append(f"- sessions ({len(sess)}; each row's `run_id` names its own):")
        for s in sess:
            ph = f" [{s['phase']}]" if s.get("phase") else ""
            out.append(f"  - `{s['run_id']}`{ph} {s.get('kind')} {s.get('started_at')}: {counts.get(s['run_id'], 0)} "
                       f"rows, git {git(s)}, {machine(s)}; {versions(s)}")
    machines = {machine_key(s) for s in used} - {None}
    revs = {s.get("git_rev") for s in used}
    warn = []
    if len(machines) > 1:
        warn.append(f"{len(machines)} machines")
    if len(revs) > 1:
        warn.append(f"{len(revs)} git revisions")
    if len(used) > 1 and any(machine_key(s) is None for s in used):
        warn.append("sessions whose machine was not recorded")
    dirty = [s["run_id"] for s in used if s.get("git_dirty")]
    if warn:
        out.append(f"- **warning**: these rows mix {', '.join(warn)}: compare rows of one session, or read each "
                   "row's `run_id` against the sessions above")
    if dirty:
        out.append(f"- **warning**: uncommitted changes in the tree of session(s) {', '.join(dirty)} (run.json: "
                   "sessions[].dirty_files)")
    return out


def git_revision(path: str | None = None) -> str:
    """HEAD's commit, with '+dirty' when the tree has uncommitted changes (bench/provenance.py: git_state).
    From ``git rev-parse HEAD`` where the checkout has .git; RATBENCH_GIT_REV only where it has none (a copy
    of the tree on a GPU machine); otherwise "unknown (no .git, RATBENCH_GIT_REV unset)", never "" or "HEAD"."""
    rev, dirty, _, _ = git_state(path)
    return rev + ("+dirty" if dirty else "")
