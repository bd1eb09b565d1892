"""Writing files: one atomic writer honouring the user's umask, and content-keyed cache stamps.

Every file srbench writes (results, reports, plots, grids, saved SR images, upscale outputs,
the generated-LR cache, the decoded-image cache) goes through :func:`atomic_open` (or its
``bytes``/``text`` shorthands): the data goes to a temporary file in the destination folder,
is flushed to disk, then ``os.replace`` moves it into place. A reader never sees a
half-written file and a crash keeps the previous complete version.

Permissions follow the user's umask like any ``open(path, "w")``: the temporary file is
created with ``os.open(..., 0o666)`` and the kernel applies the umask (and any default ACL),
so a file is ``0644`` under umask 022 and ``0664`` under 002. (``tempfile.mkstemp`` creates
``0600`` files, which made every output private, even in a shared dataset folder.)

Caches are keyed by content, never by modification time or size: :func:`write_stamp` records
a JSON *stamp* beside a cached file (e.g. the SHA-256 of the source it was derived from and
the version of the code that derived it) and :func:`stamp_matches` compares it with the stamp
the caller expects now. A missing, unreadable or different stamp means "regenerate".
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

#: Suffix of the stamp file written beside a cached file (``x.png`` → ``x.png.srbench.json``).
STAMP_SUFFIX = ".srbench.json"
_CHUNK = 1 << 20


def _create_temp(folder: Path, name: str) -> tuple[int, Path]:
    """Create a new temporary file in ``folder`` with mode 0o666 minus the umask."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {folder}")


@contextlib.contextmanager
def atomic_open(path: Path | str, *, mkdir: bool = False) -> Iterator[IO[bytes]]:
    """A binary file handle whose contents appear at ``path`` atomically on success.

    Usage: ``with atomic_open(p) as fh: fh.write(...)`` (or ``np.save(fh, a)``,
    ``image.save(fh, format="PNG")``). On an exception the temporary file is removed and
    ``path`` is untouched. ``mkdir=True`` creates the parent folders first. The new file's
    mode is 0o666 minus the process umask.

    Raises:
        OSError: the folder is missing or not writable, the disk is full, ...
    """
    path = Path(path)
    if mkdir:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path | str, data: bytes, *, mkdir: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`); returns ``path``."""
    with atomic_open(path, mkdir=mkdir) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: Path | str, text: str, *, mkdir: bool = False) -> Path:
    """UTF-8 text variant of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode("utf-8"), mkdir=mkdir)


def current_umask() -> int:
    """The process umask (e.g. ``0o022``), read without changing it where the OS allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0)  # no /proc (macOS, Windows): set and restore at once
    os.umask(mask)
    return mask


def apply_umask_to_dir(folder: Path | str) -> None:
    """Give a folder made by ``tempfile.mkdtemp`` (0700) the mode ``mkdir`` would have given it."""
    os.chmod(folder, 0o777 & ~current_umask())


# --------------------------------------------------------------------------- content keys


def file_sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stamp_path(cached: Path | str) -> Path:
    """Where the stamp of ``cached`` lives: ``<cached>.srbench.json`` beside it."""
    cached = Path(cached)
    return cached.with_name(cached.name + STAMP_SUFFIX)


def read_stamp(cached: Path | str) -> dict[str, Any] | None:
    """The stamp recorded beside ``cached``, or None when missing or unreadable."""
    try:
        data = json.loads(stamp_path(cached).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_stamp(cached: Path | str, key: dict[str, Any]) -> Path:
    """Record ``key`` (JSON-serialisable) as the content key of ``cached``, atomically.

    Write the cached file first and the stamp second: a crash in between leaves a file
    without a stamp, which :func:`stamp_matches` treats as stale.
    """
    return atomic_write_text(stamp_path(cached), json.dumps(key, sort_keys=True) + "\n")


def stamp_matches(cached: Path | str, key: dict[str, Any]) -> bool:
    """True when ``cached`` exists and its recorded stamp equals ``key`` exactly."""
    return Path(cached).is_file() and read_stamp(cached) == json.loads(json.dumps(key))
