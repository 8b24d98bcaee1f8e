"""The warm stage server (aebench.warm): a stage handed to it behaves like the process it
replaces: same argv, working directory, environment, stdout/stderr and exit code, Ctrl-C
forwarded, and the script's own code read from disk on every run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aebench import warm

STAGE = '''
import os, sys, time
from aebench import warm

def main():
    print("VERSION", {version}, "ARGV", sys.argv[1:], "CWD", os.getcwd(), "ENV", os.environ.get("PROBE"))
    print("PID", os.getpid(), "CHILD", os.environ.get("AEBENCH_WARM_CHILD"), file=sys.stderr)
    action = sys.argv[1]
    if action == "exit":
        raise SystemExit(int(sys.argv[2]))
    if action == "crash":
        raise RuntimeError("boom")
    if action == "segfault":
        os.kill(os.getpid(), 11)
    if action == "sleep":
        print("SLEEPING", flush=True)
        time.sleep(60)

warm.run(__file__, main)
'''


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    """Runs the probe stage as DVC would; one server (about 10 s of imports) for the module."""
    tmp_path = tmp_path_factory.mktemp("warm")
    env = {**os.environ, "AEBENCH_WARM": "1", "AEBENCH_WARM_IDLE": "20", "PROBE": str(tmp_path)}
    env.pop("AEBENCH_WARM_CHILD", None)
    script = tmp_path / "stage.py"

    def run(*args: str, version: int = 1, warm_on: str = "1") -> subprocess.CompletedProcess:
        script.write_text(STAGE.format(version=version))
        return subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, env={**env, "AEBENCH_WARM": warm_on},
                              capture_output=True, text=True, timeout=120)

    first = run("exit", "0")  # runs in-process and starts the server
    assert first.returncode == 0, first.stderr
    assert "CHILD None" in first.stderr
    address = warm.server_address({k: v for k, v in env.items()})
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # the server imports torch, MLflow, GX, ... before it listens
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(address)
                break
            except OSError:
                time.sleep(0.5)
    else:
        pytest.fail(f"warm server never listened; log: {warm.log_path().read_text()[-2000:]}")
    run.script, run.env, run.tmp = script, env, tmp_path
    return run


def test_stage_runs_in_a_fork_with_the_callers_argv_cwd_env_and_streams(stage):
    out = stage("exit", "0", version=2)
    assert out.returncode == 0, out.stderr
    assert "CHILD 1" in out.stderr, "the stage ran in-process, not in the warm server"
    assert f"VERSION 2 ARGV ['exit', '0'] CWD {stage.tmp} ENV {stage.tmp}" in out.stdout
    # the script is read from disk each time: an edit is seen by the next run
    assert "VERSION 3" in stage("exit", "0", version=3).stdout


def test_exit_codes_are_the_scripts(stage):
    assert stage("exit", "3").returncode == 3
    crashed = stage("crash")
    assert crashed.returncode == 1 and "RuntimeError: boom" in crashed.stderr
    assert stage("segfault").returncode == 128 + signal.SIGSEGV


def test_ctrl_c_reaches_the_stage_and_nothing_is_left_running(stage):
    proc = subprocess.Popen([sys.executable, str(stage.script), "sleep"], cwd=stage.tmp, env=stage.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("VERSION")
    assert proc.stdout.readline().strip() == "SLEEPING"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "KeyboardInterrupt" in err
    assert not _alive(int(err.split("PID ")[1].split()[0]))


def test_off_switch_runs_in_process(stage):
    out = stage("exit", "0", warm_on="0")
    assert "CHILD None" in out.stderr


def test_a_killed_stage_process_takes_its_child_with_it(stage):
    proc = subprocess.Popen([sys.executable, str(stage.script), "sleep"], cwd=stage.tmp, env=stage.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().startswith("VERSION")
    child = int(proc.stderr.readline().split("PID ")[1].split()[0])
    proc.kill()  # SIGKILL: nothing can be forwarded; the child sees the socket close
    proc.wait(timeout=10)
    assert not _alive(child), "the stage's child outlived it"


def _alive(pid: int, wait: float = 10.0) -> bool:
    """Whether `pid` still runs (not a zombie) after up to `wait` seconds."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
                return False
        except FileNotFoundError:
            return False
        time.sleep(0.1)
    return True


def test_one_server_serves_every_stage_of_a_dvc_run():
    """DVC names each stage in DVC_STAGE: that must not start a server per stage."""
    env = {k: v for k, v in os.environ.items() if k != "DVC_STAGE"}
    assert warm.server_address({**env, "DVC_STAGE": "train@a"}) == warm.server_address({**env, "DVC_STAGE": "train@b"})
    assert warm.server_address({**env, "MLFLOW_TRACKING_URI": "x"}) != warm.server_address(env)
