"""Verified downloads (through pooch) and safe, atomic archive extraction.

:func:`download` fetches one file with `pooch <https://www.fatiando.org/pooch/>`_ (the
library scikit-image itself downloads with): streamed over HTTP(S) into a temporary file
beside the destination, verified by SHA-256 when a checksum is known, and moved into place
only when it verifies, so ``DEST`` is never a partial or unverified file. A file already at
``DEST`` that verifies is not downloaded again; one that does not is replaced. Without a
checksum the size is checked (the catalogue's, else the server's ``Content-Length``) and a
:class:`DownloadWarning` says the file was verified weakly. Progress is a rich bar on
stderr. What pooch cannot do, and srbench therefore no longer does: resume an interrupted
transfer with HTTP ``Range`` (an interrupted download starts again from byte 0).

:func:`extract_archive` is ours, not pooch's: pooch's ``Unzip``/``Untar`` extract in place
and follow what the archive says, while srbench extracts into a temporary folder beside the
destination and renames it into place, refusing absolute paths, ``..`` and links, so a bad
archive can never write outside the destination or leave half a dataset.

The dataset catalogue that uses it is :mod:`srbench.data.remote`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Any

from srbench.core.errors import SrbenchError
from srbench.core.files import apply_umask_to_dir, current_umask

#: Environment variable that replaces every dataset's base URL (e.g. a local mirror).
MIRROR_ENV = "SRBENCH_DATA_MIRROR"
CHUNK_BYTES = 1 << 20


class DownloadWarning(UserWarning):
    """A download could only be verified weakly (no checksum known)."""


# --------------------------------------------------------------------------- hashing


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- download


class _RichBar:
    """The progress-bar object pooch drives (``total``, ``update``, ``reset``, ``close``), shown with rich."""

    def __init__(self, label: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task(label, total=None)
        self._progress.start()

    @property
    def total(self) -> float | None:
        return self._progress.tasks[0].total

    @total.setter
    def total(self, value: int) -> None:
        self._progress.update(self._task, total=value or None)

    def update(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def reset(self) -> None:
        self._progress.reset(self._task, total=self.total)

    def close(self) -> None:
        self._progress.stop()


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    size: int | None = None,
    progress: bool = True,
    mirror_env: str = MIRROR_ENV,
) -> Path:
    """Download ``url`` to ``dest`` (see the module docstring); returns ``dest``.

    Args:
        url: http(s) URL.
        dest: final file path; its folder is created.
        sha256: expected hex SHA-256, or None when unknown (then size-only, with a warning).
        size: expected size in bytes, or None.
        progress: show a rich progress bar on stderr.
        mirror_env: the environment variable that replaces this file's base URL, named in
            error messages (``SRBENCH_DATA_MIRROR`` for datasets, ``SRBENCH_WEIGHTS_MIRROR``
            for checkpoints).

    Raises:
        SrbenchError: HTTP errors, unreachable hosts, interrupted transfers, or a failed
            verification (nothing is left at ``dest``).
    """
    import pooch
    import requests

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    known = f"sha256:{sha256.lower()}" if sha256 else None
    if known is None and dest.is_file() and (size is None or dest.stat().st_size == size):
        return dest
    bar: Any = _RichBar(dest.name) if progress else False
    pooch.get_logger().setLevel(logging.WARNING)  # pooch logs every download at INFO
    try:
        pooch.retrieve(url, known_hash=known, fname=dest.name, path=dest.parent, progressbar=bar)
    except requests.HTTPError as exc:
        code = exc.response.status_code if exc.response is not None else "?"
        reason = exc.response.reason if exc.response is not None else exc
        raise SrbenchError(
            f"cannot download {url}: HTTP {code} {reason}; check the URL (or {mirror_env})"
        ) from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise SrbenchError(
            f"cannot reach {url} ({type(exc).__name__}); check the network connection (or set {mirror_env})"
        ) from None
    except requests.RequestException as exc:
        raise SrbenchError(f"download of {url} failed ({exc}); run the command again") from None
    except ValueError as exc:  # pooch: the downloaded file's hash does not match known_hash
        if "hash" not in str(exc).lower():
            raise
        dest.unlink(missing_ok=True)
        raise SrbenchError(
            f"checksum mismatch for {url}: expected sha256 {sha256}; "
            "the download was deleted: try again, or check the URL/mirror"
        ) from None
    finally:
        if bar:
            bar.close()
    # pooch writes through a private temporary file (mode 0600); a downloaded file is the
    # user's, so it gets the permissions their umask gives a new file.
    os.chmod(dest, 0o666 & ~current_umask())
    if known is None:
        got = dest.stat().st_size
        if size is not None and got != size:
            dest.unlink(missing_ok=True)
            raise SrbenchError(
                f"size mismatch for {url}: expected {size} bytes, got {got}; "
                "the download was deleted: try again, or check the URL/mirror"
            )
        # Without a catalogue size, the HTTP client already refused a body shorter than the
        # server's Content-Length, so the size is still checked, against the server's word.
        what = "size only" if size is not None else "size only (the server's Content-Length)"
        warnings.warn(f"no sha256 known for {url}; verified by {what}", DownloadWarning, stacklevel=2)
    return dest


# --------------------------------------------------------------------------- archives


def _member_target(root: Path, name: str, archive: Path) -> Path:
    """The path a member may be written to under ``root``; raises on traversal attempts."""
    clean = name.replace("\\", "/")
    parts = PurePosixPath(clean).parts
    if clean.startswith("/") or re.match(r"^[A-Za-z]:", clean) or ".." in parts:
        raise SrbenchError(
            f"archive {archive} has an unsafe member {name!r} (absolute path or '..'); refusing to extract it"
        )
    parts = tuple(p for p in parts if p not in ("", "."))
    target = root.joinpath(*parts) if parts else root
    if not target.resolve().is_relative_to(root.resolve()):
        raise SrbenchError(f"archive {archive} has a member {name!r} that escapes the destination; refusing")
    return target


def _extract_zip(archive: Path, root: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = _member_target(root, info.filename, archive)
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise SrbenchError(
                    f"archive {archive} has a symbolic link {info.filename!r}; refusing to extract"
                )
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK_BYTES)


def _extract_tar(archive: Path, root: Path) -> None:
    with tarfile.open(archive, "r:*") as tf:
        for member in tf:
            target = _member_target(root, member.name, archive)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tf.extractfile(member)
                assert src is not None  # regular files always have data
                with src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK_BYTES)
            else:
                raise SrbenchError(
                    f"archive {archive} has a link or special file {member.name!r}; refusing to extract"
                )


def extract_archive(archive: Path, dest_dir: Path, *, subdir: str | None = None) -> Path:
    """Extract ``archive`` (zip, tar, tar.gz/bz2/xz) so its contents appear at ``dest_dir``.

    With ``subdir`` only that folder of the archive becomes ``dest_dir`` (e.g. the zip's
    ``DIV2K_valid_LR_bicubic/X4``). Extraction happens in a temporary folder beside
    ``dest_dir``, renamed into place at the end; on any error nothing appears at ``dest_dir``.
    ``dest_dir`` must not exist yet. Returns ``dest_dir``.
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    if dest_dir.exists():
        raise SrbenchError(f"{dest_dir} already exists; remove it to extract {archive.name} again")
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.extract-", dir=dest_dir.parent))
    try:
        try:
            if zipfile.is_zipfile(archive):
                _extract_zip(archive, tmp)
            elif tarfile.is_tarfile(archive):
                _extract_tar(archive, tmp)
            else:
                raise SrbenchError(
                    f"{archive} is neither a zip nor a tar archive; delete it and download again"
                )
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            if isinstance(exc, FileNotFoundError) and not archive.exists():
                raise SrbenchError(f"archive {archive} does not exist; download it first") from None
            raise SrbenchError(
                f"archive {archive} is corrupt ({exc}); delete it and download again"
            ) from None
        source = tmp / subdir if subdir else tmp
        if not source.is_dir():
            found = ", ".join(sorted(p.name for p in tmp.iterdir())) or "nothing"
            raise SrbenchError(
                f"archive {archive} has no folder {subdir!r} (it holds: {found}); "
                "the archive's layout changed: report it or extract it by hand"
            )
        apply_umask_to_dir(source)  # mkdtemp made it 0700; a dataset folder follows the umask
        os.replace(source, dest_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir
