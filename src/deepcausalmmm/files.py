"""Writing files safely: where a file may go, and writing it whole or not at all.

Kept apart from :mod:`deepcausalmmm.io` (which needs torch) so that the command line can
check its ``--out`` before importing the model.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .exceptions import DataError

__all__ = ["atomic_path", "check_target"]


def check_target(path: Path, name: str, example: str, directory: bool = False) -> Path:
    """``path`` if a file (with ``directory``, a folder of files) can be written there: a
    ``DataError`` naming ``name`` (as the caller spells it: ```path``` for an argument,
    ``--out`` for an option) when it is a directory (with ``directory``, a file), or when a
    part of its parent is a file. Checked before any work is done."""
    if directory and path.exists() and not path.is_dir():
        raise DataError(f"{name} '{path}' is a file, and this writes several files into a folder; give a "
                        f"folder path (new or existing), e.g. '{path.with_suffix('')}_{example}'")
    if not directory and path.is_dir():
        raise DataError(f"{name} '{path}' is a directory; give a file path inside it, e.g. '{path / example}'")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise DataError(f"{name} '{path}' lies under '{parent}', which is a file, not a directory; "
                                "choose a path in a directory")
            break
    return path


@contextmanager
def atomic_path(path: Path, suffix: str) -> Iterator[str]:
    """A temporary file beside ``path`` to write; when the block succeeds it replaces ``path``.

    A failed write leaves ``path`` as it was and no temporary file behind. The
    result gets the permissions of a plain new file (0666 less the umask), not
    the owner-only 0600 of :func:`tempfile.mkstemp`, so a report or model file
    others could read before stays readable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
