"""Params profiles: a whole params file kept in `profiles/<name>.yaml`, run as its own DVC
workspace so that the default `params.yaml` stays the quick default.

`aebench profile paper` (or `make paper`):

1. validates `profiles/paper.yaml` like params.yaml (`aebench check profiles/paper.yaml`);
2. checks out the current commit into `.profiles/paper/` (a git worktree, ignored), writes
   the profile there as its `params.yaml`, with a relative `data.mirror` made absolute
   against this checkout, writes its per-run stages into its dvc.yaml (`python -m aebench.plan`) and runs `dvc repro`
   in it with that worktree's code (the warm stage server on, as `make repro`). Its DVC
   lock and cache, MLflow store and outputs stay there, so a second run resumes where the
   first stopped and reruns only what changed;
   `aebench profile paper --stages 'train-loop-*' ...` limits it to those DVC targets (globs),
   what they need, and the report: a slice of a long profile, recorded as such;
3. copies what a reader needs into `results/paper/`: `summary.md` (figure links rewritten),
   `claims.json`, `claims.md`, every run's and seed's `metrics.json` and `run.json`, the figures
   summary.md links, the profile itself, and `provenance.json` (commit, date, machine,
   wall time of this `dvc repro` and of every earlier one of the worktree: a resumed run
   reruns only what changed, so the full cost is in the first).

Only committed code runs: uncommitted changes are not in the worktree, and the results name
the commit they came from.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from aebench import machine
from aebench.errors import UserError
from aebench.io import write_json_atomic, write_text_atomic
from aebench.plan import load_params
from aebench.report import time_use

log = logging.getLogger(__name__)

PROFILES = "profiles"
WORKTREES = ".profiles"
RESULTS = "results"
RUN_LOG = "profile-runs.json"  # in the worktree: every `dvc repro` it had, with its wall time
LINK = re.compile(r"\]\(((?:\.\./)?(?:eval|figures)/[^)\s]+)\)")  # summary.md's figure links


def profile_path(name: str, root: Path) -> Path:
    path = root / PROFILES / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (root / PROFILES).glob("*.yaml"))
        raise UserError(f"no profile `{name}` ({path} not found); known: {', '.join(known) or 'none'}")
    return path


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"git {' '.join(args)} failed in {root}: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout.strip()


def checkout(root: Path, name: str) -> Path:
    """`.profiles/<name>/` at this checkout's HEAD (created, or moved to HEAD)."""
    tree = root / WORKTREES / name
    head = _git(root, "rev-parse", "HEAD")
    if (tree / ".git").exists():
        _git(tree, "checkout", "--detach", "--force", head)
    else:
        tree.parent.mkdir(exist_ok=True)
        _git(root, "worktree", "prune")
        _git(root, "worktree", "add", "--detach", "--force", str(tree), head)
    if _git(root, "status", "--porcelain", "--untracked-files=no"):
        log.warning("uncommitted changes are not part of the profile run: it runs commit %s", head[:12])
    return tree


def profile_params(profile: Path, root: Path) -> str:
    """The profile's text for the worktree's params.yaml: a relative `data.mirror` is made
    absolute against `root` (the worktree sits two folders deeper)."""
    params = yaml.safe_load(profile.read_text(encoding="utf-8")) or {}
    mirror = (params.get("data") or {}).get("mirror")
    text = profile.read_text(encoding="utf-8")
    if isinstance(mirror, str) and "://" not in mirror and not Path(mirror).is_absolute():
        absolute = (root / mirror).resolve()
        text = re.sub(r"(?m)^(\s+mirror:\s*)" + re.escape(mirror) + r"(\s|$)", rf"\g<1>{absolute}\g<2>", text, count=1)
    return text


def run_dvc(tree: Path, stages: list[str] | None = None) -> float:
    """`dvc repro` in the worktree with its own code, after writing the profile's per-run stages
    (`aebench.plan`), with the warm stage server on as `make repro` has it; returns the wall seconds.
    `stages` limits it to those DVC targets (globs such as `train-loop-*`) and what they need, then
    renders the report alone."""
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    env.pop("AEBENCH_ROOT", None)
    env.setdefault("AEBENCH_WARM", "1")
    planned = subprocess.run([sys.executable, "-m", "aebench.plan"], cwd=tree, env=env)
    if planned.returncode != 0:
        raise UserError(f"`python -m aebench.plan` in {tree} failed (exit {planned.returncode}): see its message above")
    start = time.perf_counter()
    # the report depends on every run's outputs: a slice repros its targets, then the report alone
    commands = [["--glob", *stages], ["--single-item", "report"]] if stages else [[]]
    for targets in commands:
        done = subprocess.run([sys.executable, "-m", "dvc", "repro", *targets], cwd=tree, env=env)
        if done.returncode != 0:
            break
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        _record_run(tree, seconds, stages, exit_code=done.returncode)  # its finished stages are kept: log its time
        raise UserError(f"`dvc repro` in {tree} failed (exit {done.returncode}); its outputs so far are kept there: "
                        f"fix the cause and run the profile again to resume")
    return seconds


def collect(tree: Path, out: Path, profile: Path, seconds: float | None, report_commit: str | None = None,
            stages: list[str] | None = None) -> None:
    """Copy the small results a reader needs from the worktree into `out`. `seconds` is this
    `dvc repro`'s wall time, logged as a run (with the `stages` it was limited to); None with
    `report_commit` for a report re-rendered from the same runs (`rerender`), which logs no run
    and keeps `time.md` and the runs' machine as they were (the runs did not change; `time.md`
    may hold the suites' seconds that `benchmarks/profile_time.py` read from the runs' logs);
    the machine that re-rendered is named under `report`."""
    time_file, old_provenance = out / time_use.TIME_FILE, out / "provenance.json"
    kept_time = time_file.read_text(encoding="utf-8") if seconds is None and time_file.is_file() else None
    ran_on = json.loads(old_provenance.read_text()) if seconds is None and old_provenance.is_file() else {}
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    summary = (tree / "reports" / "summary.md").read_text(encoding="utf-8")
    reports = (tree / "reports").resolve()
    for rel in sorted(set(LINK.findall(summary))):
        source = (reports / rel).resolve()
        if source.is_file() and source.is_relative_to(tree.resolve()):
            # ../eval/... keeps its path under the tree; figures/... its path under reports/
            target = out / source.relative_to(reports if source.is_relative_to(reports) else tree.resolve())
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    write_text_atomic(out / "summary.md", summary.replace("](../", "]("))
    for name in ("claims.json", "claims.md"):
        shutil.copy2(tree / "reports" / name, out / name)
    for pattern in ("eval/*/*/seed*/metrics.json", "models/*/*/seed*/run.json"):
        for source in sorted(tree.glob(pattern)):
            target = out / source.relative_to(tree)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    shutil.copy2(profile, out / "params.yaml")
    info = machine.describe()
    runs = _record_run(tree, seconds, stages) if seconds is not None else json.loads((tree / RUN_LOG).read_text())
    provenance = {
        "commit": runs[-1]["commit"],
        "date": runs[-1]["date"],
        "machine": ran_on.get("machine", runs[-1].get("machine", machine.label(info))),  # where the runs ran
        "gpu": ran_on.get("gpu", info["gpu"]),
        "wall_seconds": runs[-1]["wall_seconds"],
        "runs": runs,  # every `dvc repro` of this worktree: a resumed run reruns only what changed
    }
    if report_commit:
        provenance["report"] = {
            "commit": report_commit, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine.label(info), "note": "the report (claims, their explanations, tables) re-rendered "
                                                    "from the runs above with the report code of this commit; nothing retrained"}
    write_json_atomic(out / "provenance.json", provenance)
    if kept_time is None:
        time_use.write(out, profile.stem)
    else:
        write_text_atomic(time_file, kept_time)


def _record_run(tree: Path, seconds: float, stages: list[str] | None = None, exit_code: int = 0) -> list[dict]:
    """Append this `dvc repro` to the worktree's run log (RUN_LOG) and return the log; one that
    stopped early (a failure, Ctrl-C) is logged with its exit code, since its finished stages count."""
    log_path = tree / RUN_LOG
    runs = json.loads(log_path.read_text()) if log_path.is_file() else []
    runs.append({"commit": _git(tree, "rev-parse", "HEAD"), "date": datetime.now(timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC"), "wall_seconds": round(seconds, 1), "machine": machine.label(),
        **({"stages": stages} if stages else {}), **({"exit_code": exit_code} if exit_code else {})})
    write_json_atomic(log_path, runs)
    return runs


def rerender(name: str, root: Path) -> Path:
    """Re-render the report of profile `name`'s last run with this checkout's report code (a
    claim's explanation or the report's layout changed; the runs did not) and collect it."""
    tree = root / WORKTREES / name
    if not (tree / RUN_LOG).is_file():
        raise UserError(f"profile `{name}` has no finished run in {tree}: run `aebench profile {name}` first")
    env = dict(os.environ, PYTHONPATH=str(root / "src"))
    env.pop("AEBENCH_ROOT", None)
    done = subprocess.run([sys.executable, "-m", "aebench.stages", "report"], cwd=tree, env=env)
    if done.returncode != 0:
        raise UserError(f"the report stage in {tree} failed (exit {done.returncode}): see its message above")
    out = root / RESULTS / name
    collect(tree, out, profile_path(name, root), None, report_commit=_git(root, "rev-parse", "HEAD"))
    return out


def run_profile(name: str, root: Path, stages: list[str] | None = None) -> Path:
    """Validate, run and collect the profile `name` (only `stages` and what they need, when
    given); returns `results/<name>/`."""
    profile = profile_path(name, root)
    load_params(profile)
    tree = checkout(root, name)
    write_text_atomic(tree / "params.yaml", profile_params(profile, root))
    seconds = run_dvc(tree, stages)
    out = root / RESULTS / name
    collect(tree, out, profile, seconds, stages=stages)
    log.info("profile %s: dvc repro took %.0f s; results in %s", name, seconds, out)
    return out
