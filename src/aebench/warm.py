"""Opt-in tooling: a warm interpreter for DVC stages, so that every stage does not pay 2-10 s
of imports. `AEBENCH_WARM=1` turns it on (`make repro` sets it); otherwise stages run in-process.

`dvc repro` runs every stage as a fresh `python stages/<stage>.py`, and a stage's own
work is often shorter than importing torch, torch._dynamo (the first optimizer imports it),
MLflow, great-expectations and scikit-learn. So the stage dispatcher (`aebench.stages.__main__`,
which those scripts and `python -m aebench.stages` call)
asks a warm server to run it instead: the server has imported those libraries once and forks
a child per stage. The child takes the stage's stdin/stdout/stderr (passed over a Unix
socket), its working directory, environment and argv, runs the module (or script) as
`__main__` and exits with its exit code, which the stage process exits with in turn. DVC sees
an ordinary process. This module imports nothing of aebench.

What keeps this safe:
- Only third-party libraries are preloaded, never aebench's own modules, so a stage always
  runs the code on disk. The server's address is keyed by the interpreter and its
  site-packages (modification time), the aebench checkout, the environment and this file, so
  an install into the venv, a changed environment or new server code gets a new server.
- No server, or one that cannot take the request, means the stage runs in-process (and
  starts a server for the stages after it); without `AEBENCH_WARM=1` no server is used.
- Ctrl-C and SIGTERM on the stage process are forwarded to the child; if the stage process
  dies, the child is terminated. A child that crashes reports its signal as the exit code.
- The server exits after `AEBENCH_WARM_IDLE` seconds (default 60) without work; its log is
  `<tmp>/aebench-warm-<uid>.log`.
Linux only (abstract socket names, fd passing); elsewhere, and under torchrun, stages run
in-process.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import importlib
import json
import os
import runpy
import select
import signal
import socket
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

CHILD_MARK = "AEBENCH_WARM_CHILD"
# What stages import that is slow to import (measured with -X importtime), in import order.
PRELOAD = (
    "numpy", "scipy.sparse.linalg", "scipy.optimize", "scipy.stats", "pandas", "pyarrow.parquet", "yaml", "pydantic",
    "torch", "torch.nn.functional", "torch.optim", "torch._dynamo",
    "sklearn.neighbors", "sklearn.linear_model", "sklearn.cluster", "sklearn.metrics", "sklearn.manifold",
    "sklearn.ensemble", "sklearn.preprocessing", "sklearn.decomposition", "ot",
    "matplotlib", "matplotlib.pyplot", "tqdm",
    "mlflow", "mlflow.pyfunc", "mlflow.tracking", "mlflow.store.tracking.sqlalchemy_store", "mlflow.models.signature",
    "great_expectations",
)
# Not part of the key: shell bookkeeping, and DVC's own variables (DVC_STAGE names each stage).
_VOLATILE_ENV = {"_", "PWD", "OLDPWD", "SHLVL", CHILD_MARK}
_HEADER = struct.Struct("!Q")


def enabled() -> bool:
    """Whether a stage started here may hand off: opted in, on Linux, not already a child, and
    not a torchrun rank (long runs, each its own process group)."""
    return (os.environ.get("AEBENCH_WARM") == "1" and not os.environ.get(CHILD_MARK)
            and sys.platform.startswith("linux") and "WORLD_SIZE" not in os.environ)


def run(script: str, main: Callable[[], None]) -> None:
    """Run the stage `script` (its `__file__`) whose entry point is `main`, in a fork of the
    warm server when one is up; otherwise here, starting a server for the next stages."""
    _run({"script": os.path.abspath(script)}, main)


def run_module(module: str, main: Callable[[], None]) -> None:
    """`run` for a stage started as `python -m <module>`."""
    _run({"module": module}, main)


def _run(target: dict, main: Callable[[], None]) -> None:
    if not enabled():
        main()
        return
    address = server_address()
    code = _delegate(address, target)
    if code is None:
        if not _server_starting(address):
            _start_server(address)
        main()
        return
    raise SystemExit(code)


def server_address(environ: dict[str, str] | None = None) -> str:
    """The abstract socket name of the server that fits this interpreter and its packages, the
    aebench checkout, the environment and the server code."""
    environ = dict(os.environ if environ is None else environ)
    key = json.dumps({
        "python": sys.executable,
        "package": str(Path(__file__).parent),  # the aebench a child imports is the server's
        "site": os.stat(sysconfig.get_paths()["purelib"]).st_mtime_ns,  # pip install changes it
        "code": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
        "env": sorted((k, v) for k, v in environ.items() if k not in _VOLATILE_ENV and not k.startswith("DVC_")),
    })
    return f"\0aebench-warm-{os.getuid()}-{hashlib.sha256(key.encode()).hexdigest()[:20]}"


def log_path() -> Path:
    return Path(tempfile.gettempdir()) / f"aebench-warm-{os.getuid()}.log"


def _lock_path(address: str) -> Path:
    """Held by the server for its whole life, imports included, so that stages started while
    it imports do not start more servers."""
    return Path(tempfile.gettempdir()) / f"{address.lstrip(chr(0))}.lock"


def _try_lock(address: str) -> int | None:
    fd = os.open(_lock_path(address), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _server_starting(address: str) -> bool:
    fd = _try_lock(address)
    if fd is None:
        return True
    os.close(fd)
    return False


# --- the stage's side -----------------------------------------------------------------------

def _delegate(address: str, target: dict) -> int | None:
    """Have the server run `target` ({"script": path} or {"module": name}); its exit code, or
    None when no server took it (it did not start)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address)
        request = json.dumps({**target, "argv": [target.get("script", "-m"), *sys.argv[1:]], "cwd": os.getcwd(),
                              "env": dict(os.environ)}).encode()
        socket.send_fds(sock, [_HEADER.pack(len(request)) + request], [0, 1, 2])
        reply = sock.makefile("r")
        started = reply.readline()
    except OSError:
        sock.close()
        return None
    if not started.startswith("pid "):
        sock.close()
        return None
    forward = lambda signum, frame: _send_quietly(sock, b"T" if signum == signal.SIGTERM else b"I")  # noqa: E731
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    finished = reply.readline()
    if not finished.startswith("exit "):
        print("aebench: error: the warm stage server stopped while running this stage; see "
              f"{log_path()}, and rerun with AEBENCH_WARM=0 to run stages without it", file=sys.stderr)
        return 1
    return int(finished.split()[1])


def _send_quietly(sock: socket.socket, message: bytes) -> None:
    try:
        sock.sendall(message)
    except OSError:
        pass


def _start_server(address: str) -> None:
    with open(log_path(), "a") as log:
        subprocess.Popen([sys.executable, "-m", "aebench.warm", address.lstrip("\0")], stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log, start_new_session=True, close_fds=True)


# --- the server's side ----------------------------------------------------------------------

def serve(address: str, idle_seconds: float) -> None:
    """Preload, then fork a child per request until idle; the child never returns from here."""
    lock = _try_lock(address)
    if lock is None:
        _log("another server holds this address; exiting")
        return
    t0 = time.perf_counter()
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            _log(f"preload {name}: {exc}")
    _prime_mlflow_requirement_check()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(16)
    _log(f"serving {address[1:]} after {time.perf_counter() - t0:.1f}s of imports")
    children: dict[int, socket.socket] = {}
    last_active = time.monotonic()
    while True:
        _reap(children)
        if children:
            last_active = time.monotonic()
        elif time.monotonic() - last_active > idle_seconds:
            break
        if not select.select([listener], [], [], 0.2)[0]:
            continue
        conn, _ = listener.accept()
        try:
            request, fds = _receive(conn)
        except (OSError, ValueError) as exc:
            _log(f"bad request: {exc}")
            conn.close()
            continue
        pid = os.fork()
        if pid == 0:
            listener.close()
            os.close(lock)
            for other in children.values():
                other.close()
            _run_child(conn, fds, request)
        for fd in fds:
            os.close(fd)
        conn.sendall(f"pid {pid}\n".encode())
        children[pid] = conn
    listener.close()
    _log("idle; exiting")


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    if len(fds) != 3 or len(data) < _HEADER.size:
        for fd in fds:
            os.close(fd)
        raise ValueError("expected a header and three file descriptors")
    (size,) = _HEADER.unpack_from(data)
    body = data[_HEADER.size:]
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ValueError("request cut short")
        body += chunk
    return json.loads(body), fds


def _reap(children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            code = os.waitstatus_to_exitcode(status)
            _send_quietly(conn, f"exit {code if code >= 0 else 128 - code}\n".encode())
            conn.close()


def _run_child(conn: socket.socket, fds: list[int], request: dict) -> None:
    """In the fork: become the stage process, run the script, exit with its code."""
    code = 1
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = open(0, closefd=False)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ[CHILD_MARK] = "1"
        os.chdir(request["cwd"])
        sys.argv = request["argv"]
        # what `python script.py` and `python -m module` put first on the path
        sys.path[0] = os.path.dirname(request["script"]) if "script" in request else request["cwd"]
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        threading.Thread(target=_watch_stage_process, args=(conn,), daemon=True).start()
        if "script" in request:
            runpy.run_path(request["script"], run_name="__main__")
        else:
            runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            print(exc.code, file=sys.stderr)
    except BaseException as exc:  # noqa: BLE001 - report like the interpreter would, then exit
        traceback.print_exc()
        code = 130 if isinstance(exc, KeyboardInterrupt) else 1
    finally:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def _watch_stage_process(conn: socket.socket) -> None:
    """Relay Ctrl-C / SIGTERM from the stage process; if it goes away, stop too."""
    while True:
        try:
            message = conn.recv(1)
        except OSError:
            message = b""
        if message == b"I":
            os.kill(os.getpid(), signal.SIGINT)
        else:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def _prime_mlflow_requirement_check() -> None:
    """Logging a model checks its pip requirements against the installed packages, and the
    first check maps modules to packages by reading every installed package's RECORD (2 s).
    The map depends only on the venv, so build it once here. (A private MLflow helper: if it
    moves, stages just pay the 2 s again.)"""
    try:
        from mlflow.utils import requirements_utils

        requirements_utils._init_packages_to_modules_map()
    except Exception as exc:  # noqa: BLE001 - an optimisation only
        _log(f"could not prime MLflow's requirement check: {exc}")


def _log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} [{os.getpid()}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    serve("\0" + sys.argv[1], float(os.environ.get("AEBENCH_WARM_IDLE", "60")))
