"""Set-up time: the pinned install (`requirements.lock`, the project editable with its dev
extras) into a fresh venv, by pip (as `make setup` falls back to) and by uv (as it does
first), each without a download cache, then whether both installed the same packages.

    .venv/bin/python benchmarks/setup_bench.py [--workdir /tmp/aebench-setup]

Updates `setup_seconds` in benchmarks/results.json. Minutes, and several GB of disk.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, update_results  # noqa: E402

UV = "uv==0.13.9"  # as the Makefile pins it


def timed(*commands: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    for command in commands:
        subprocess.run(command, check=True, cwd=REPO, capture_output=True, env=env)
    return time.perf_counter() - t0


def installed(python: Path) -> set[str]:
    """`name version` of every package in the venv, names normalised as PEP 503 does."""
    done = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze", "--exclude-editable"],
                          check=True, capture_output=True, text=True)
    return {re.sub(r"[-_.]+", "-", line.lower()).replace("==", " ") for line in done.stdout.splitlines()
            if "==" in line and not line.lower().startswith(("pip==", "setuptools==", "uv=="))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/aebench-setup"))
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    pip_venv, uv_venv, tool = args.workdir / "pip", args.workdir / "uv", args.workdir / "tool"
    install = ["-c", "requirements.lock", "-e", ".[dev]"]
    subprocess.run([sys.executable, "-m", "venv", str(tool)], check=True)
    subprocess.run([str(tool / "bin" / "python"), "-m", "pip", "install", "-q", UV], check=True)
    pip_seconds = timed([sys.executable, "-m", "venv", str(pip_venv)],
                        [str(pip_venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir",
                         "--upgrade", "pip"],
                        [str(pip_venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-cache-dir", *install])
    print(f"pip: {pip_seconds:.0f} s", flush=True)
    uv_seconds = timed([sys.executable, "-m", "venv", str(uv_venv)],
                       [str(tool / "bin" / "uv"), "pip", "install", "-q", "--no-cache", "--python",
                        str(uv_venv / "bin" / "python"), *install])
    print(f"uv: {uv_seconds:.0f} s", flush=True)
    by_pip, by_uv = installed(pip_venv / "bin" / "python"), installed(uv_venv / "bin" / "python")
    print(f"packages: {len(by_pip)} by pip, {len(by_uv)} by uv, {'the same' if by_pip == by_uv else 'different'}")
    update_results({"setup_seconds": {"pip": round(pip_seconds, 1), "uv": round(uv_seconds, 1),
                                      "packages": len(by_pip), "same_packages": by_pip == by_uv,
                                      "differences": sorted(by_pip ^ by_uv)}})
    shutil.rmtree(args.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
