"""Atomic file writes for everything a run, a sweep or a certificate writes.

A file is written to a temp file in the same folder and moved into place with
``os.replace``, so a reader (CI, a dashboard polling the folder) never sees a half-written
file, and a failure leaves the previous version untouched.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "write_text"]


@contextmanager
def atomic_path(target: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temp path beside ``target``; on normal exit move it onto ``target``.

    On an exception the temp file is removed and ``target`` is left as it was. ``suffix``
    lets writers that choose a format by extension (Parquet vs CSV) see the right one.
    """
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; reports are meant to be shared
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(target: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically; returns ``target``."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target
