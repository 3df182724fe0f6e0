"""Paths on the command line, checked before the work (and before slow imports): input files that
must exist, and output folders, left as they were found when a command fails."""

from __future__ import annotations

import tempfile
from pathlib import Path

from edgesnn.errors import EdgesnnError


def require_file(path: Path, what: str) -> Path:
    """`path`, or a one-line refusal when it is no file (missing, a folder, /dev/null)."""
    path = Path(path)
    if path.is_dir():
        raise EdgesnnError(f"{path}: a folder, not a {what}")
    if not path.exists():
        raise EdgesnnError(f"{path}: {what} not found")
    if not path.is_file():  # /dev/null, a pipe: it exists, and holds no file to read
        raise EdgesnnError(f"{path}: not a regular file (a device or a pipe), not a {what}")
    return path


def missing(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first."""
    out, p = [], Path(folder)
    while not p.exists() and not p.is_symlink() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def remove_empty(folders: list[Path]) -> None:
    """Remove `folders` (deepest first) as long as they are empty: what a failed command made."""
    for f in folders:
        try:
            f.rmdir()
        except OSError:
            return


def _file_in_the_way(folder: Path) -> str | None:
    """Why `folder` cannot be a folder (it is a file, or a path under one), or None."""
    made = missing(folder)
    nearest = made[-1].parent if made else Path(folder)  # the deepest part that exists
    if nearest.exists() and not nearest.is_dir():
        return "a file, not a folder" if nearest == Path(folder) else f"{nearest} is a file"
    return None


def check_folder(out_dir: Path) -> None:
    """Refuse, in one line and before any work, an --out that cannot be a folder: a file, or a
    path under one (else the command fails at its end with a bare "File exists")."""
    why = _file_in_the_way(out_dir)
    if why:
        raise EdgesnnError(f"--out {out_dir}: {why}")
    if why := _cannot_write(out_dir):  # /proc/x, a read-only place: said now, not after the work
        raise EdgesnnError(f"--out {out_dir}: cannot write there ({why})")


def check_writable(folder: Path) -> None:
    """Refuse, in one line and before any work, a folder that cannot hold the results (a file in
    the way, a read-only place), leaving no folder behind: the command makes it when it writes."""
    why = _file_in_the_way(folder) or _cannot_write(folder)  # the first said plainly, not as mkdir's "File exists"
    if why:
        raise EdgesnnError(f"{folder}: cannot write the results there ({why})")


def _cannot_write(folder: Path) -> str | None:
    """Why a file cannot be written in `folder` (made for the try and removed), or None."""
    made = missing(folder)
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()  # a folder that exists may still be read-only
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        remove_empty(made)
    return None
