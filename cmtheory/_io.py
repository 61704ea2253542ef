"""Atomic file writes shared by the sweep runner and the reports.

A file is replaced whole or not at all: the new bytes go to a temporary file in the same
folder, are flushed to disk, then renamed over the old name (atomic on POSIX), so a full disk
or a kill leaves the old file as it was. Identical bytes are not rewritten, so regenerating
unchanged results works on read-only storage.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` atomically; returns False (and writes nothing) when the file
    already holds exactly these bytes."""
    path = Path(path)
    with contextlib.suppress(OSError):
        if path.read_bytes() == data:
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True
