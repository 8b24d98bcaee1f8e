"""Atomic file output: write to a temporary file beside the target, then rename.

A crash, a kill or a full disk while writing leaves the previous file intact, never a
half-written one.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from aebench.errors import UserError

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}
# torch.save reports a failed write (a full disk, a file size limit) as a RuntimeError of its
# zip writer, not as an OSError
_TORCH_WRITE_FAILED = ("PytorchStreamWriter failed", "unexpected pos", "file write failed")


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto `target` on success. A
    full disk or a folder that is not writable ends in a UserError naming the file and the
    fix, with the previous file unchanged and no temporary file left."""
    target = Path(target)
    tmp_path = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as exc:
        if exc.errno in _DISK_FULL or exc.errno == errno.EFBIG:
            raise UserError(f"no space left on the device while writing {target}: free some space and rerun; "
                            f"the previous {target.name} (if any) is unchanged") from exc
        if exc.errno in _NOT_WRITABLE:
            raise UserError(f"{target.parent} is not writable ({exc.strerror}) while writing {target.name}: make it "
                            f"writable (`chmod u+w {target.parent}`) and rerun; the previous {target.name} (if any) "
                            f"is unchanged") from exc
        raise
    except RuntimeError as exc:
        if not any(text in str(exc) for text in _TORCH_WRITE_FAILED):
            raise
        free = shutil.disk_usage(target.parent).free
        raise UserError(f"writing {target} failed ({free / 2**20:.0f} MiB free on its device: it is full, or a file "
                        f"size limit applies): free some space and rerun; the previous {target.name} (if any) is "
                        f"unchanged") from exc
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(target: str | os.PathLike, data: bytes) -> None:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def write_text_atomic(target: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))


def write_json_atomic(target: str | os.PathLike, obj) -> None:
    write_text_atomic(target, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()
