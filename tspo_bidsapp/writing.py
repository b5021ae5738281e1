"""How a run writes: writability checks for OUTPUT_DIR and the work folder, atomic writes.

Both folders are checked before anything is written, so that a folder on a read-only
filesystem or without write permission ends the run with a clear message instead of a
traceback and half an output. Every file is written under a unique temporary name created
exclusively beside its target (never following a symlink planted there), given the mode the
umask asks for, and renamed into place.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from tspo_bidsapp.exitcodes import UsageError


def nearest_existing(path: str | Path) -> Path:
    """``path`` itself when it exists, else its closest existing parent."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def can_create(path: str | Path) -> bool:
    """Whether ``path`` is (or can be made) a folder this process can write into.

    ``os.access`` reports a read-only filesystem (EROFS) even to root.
    """
    existing = nearest_existing(path)
    return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)


def check_writable(path: str | Path, name: str) -> None:
    """Raise :class:`UsageError` (exit 64) when the folder ``path`` cannot be written."""
    existing = nearest_existing(path)
    if not existing.is_dir():
        raise UsageError(f"the {name} cannot be created: {existing} is not a folder", path=path)
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "" if existing == Path(path).absolute() else f" (in {existing})"
        raise UsageError(
            f"the {name} is not writable{where}: check the permissions, or whether that place "
            "is on a read-only filesystem (in a container, mount a writable folder there)",
            path=path,
        )


def current_umask() -> int:
    """The process umask (read from /proc where possible: setting it is not thread-safe)."""
    try:
        status = Path("/proc/self/status").read_text()
        return int(re.search(r"^Umask:\s*([0-7]+)", status, re.M).group(1), 8)
    except (OSError, AttributeError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


def _temporary(target: Path, suffix: str = ".tmp") -> tuple[int, Path]:
    """An open descriptor and the path of a new, exclusively created file beside ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    return fd, Path(tmp)


def _publish(tmp: Path, target: Path, *, link: bool = False) -> None:
    """Give ``tmp`` the mode of a newly created file (0666 less the umask) and move it onto
    ``target``; with ``link``, hard-link it instead (fails if ``target`` exists)."""
    os.chmod(tmp, 0o666 & ~current_umask())
    if link:
        os.link(tmp, target)
        tmp.unlink()
    else:
        os.replace(tmp, target)


def atomic_write(target: str | Path, write: Callable[[Path], object], suffix: str = ".tmp") -> None:
    """Call ``write(tmp_path)`` on a fresh temporary file, then rename it onto ``target``.

    ``suffix`` ends the temporary name (e.g. ``.tmp.nii.gz`` for writers that go by it).
    The target is never left half-written; a failed write leaves the old file in place.
    """
    target = Path(target)
    fd, tmp = _temporary(target, suffix)
    os.close(fd)
    try:
        write(tmp)
        _publish(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(target: str | Path, data: bytes, *, exclusive: bool = False) -> bool:
    """Write ``data`` to ``target`` atomically through the temporary file's own descriptor.

    With ``exclusive``, the file is only created when ``target`` does not exist yet (returns
    False, writing nothing, when it does).
    """
    target = Path(target)
    fd, tmp = _temporary(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        _publish(tmp, target, link=exclusive)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        return False
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def copy_file_atomic(source: str | Path, target: str | Path) -> None:
    """Copy ``source`` onto ``target`` atomically, writing through the temporary's descriptor."""
    target = Path(target)
    fd, tmp = _temporary(target)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out)
        _publish(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
