"""Verified, resumable, atomic downloads and safe archive extraction.

:func:`download` is generic (datasets and model weights use it):

* streamed with :mod:`urllib` in 1 MiB chunks, with a rich progress bar on stderr;
* written to ``DEST.part`` first; an interrupted download keeps the ``.part`` and the next
  attempt asks for the rest with an HTTP ``Range`` header. A server that ignores ``Range``
  (answers 200) restarts the file from byte 0; a 416 answer discards the ``.part``;
* dropped connections are retried ``retries`` times (resuming) before giving up;
* verified by SHA-256 when a checksum is known; a mismatch deletes the file and raises.
  Without a checksum the size is checked (the catalogue's size, else the server's
  ``Content-Length``) and a :class:`DownloadWarning` says the file was verified by size only;
* atomic: only a verified file is moved to ``DEST`` with ``os.replace``, so ``DEST`` is
  never a partial file. If ``DEST`` already exists and verifies, nothing is downloaded.

:func:`extract_archive` extracts zip and tar(.gz/.bz2/.xz) archives into a temporary folder
beside the destination and renames it into place, refusing absolute paths, ``..`` and
links, so a bad archive can never write outside the destination or leave half a dataset.

Dataset URLs, sizes and SHA-256 sums live in ``dataset_urls.json`` next to this module (the
DIV2K figures are the ones TensorFlow Datasets publishes for the same files). The base URL
of every dataset can be replaced with the environment variable ``SRBENCH_DATA_MIRROR``; the
file names stay the same.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from srbench import __version__
from srbench.errors import SrbenchError

#: Environment variable that replaces every dataset's base URL (e.g. a local mirror).
MIRROR_ENV = "SRBENCH_DATA_MIRROR"
CHUNK_BYTES = 1 << 20
_CATALOG_FILE = Path(__file__).with_name("dataset_urls.json")


class DownloadWarning(UserWarning):
    """A download could only be verified weakly (no checksum known)."""


class _Interrupted(Exception):
    """The transfer stopped before the end; the ``.part`` file holds what arrived."""

    def __init__(self, received: int, total: int | None, reason: str) -> None:
        super().__init__(reason)
        self.received = received
        self.total = total
        self.reason = reason


# --------------------------------------------------------------------------- hashing


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _verifies(path: Path, sha256: str | None, size: int | None) -> bool:
    """Whether an existing file matches what is known about it (anything matches nothing)."""
    if sha256 is not None:
        return sha256_of(path) == sha256.lower()
    if size is not None:
        return path.stat().st_size == size
    return True


# --------------------------------------------------------------------------- download


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None,
    size: int | None = None,
    progress: bool = True,
    retries: int = 2,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` (see the module docstring); returns ``dest``.

    Args:
        url: http(s) URL.
        dest: final file path; its folder is created.
        sha256: expected hex SHA-256, or None when unknown (then size-only, with a warning).
        size: expected size in bytes, or None.
        progress: show a rich progress bar on stderr.
        retries: extra attempts, each resuming, after a dropped connection.
        timeout: socket timeout in seconds for connecting and for each read.

    Raises:
        SrbenchError: HTTP errors, unreachable hosts, transfers still incomplete after the
            retries (the ``.part`` is kept for the next call), or a failed verification
            (the file is deleted).
    """
    dest = Path(dest)
    if dest.is_file() and _verifies(dest, sha256, size):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    attempt = 0
    while True:
        try:
            announced = _fetch(url, part, progress=progress, timeout=timeout)
            break
        except _Interrupted as exc:
            attempt += 1
            if attempt > retries:
                total = f" of {exc.total}" if exc.total is not None else ""
                raise SrbenchError(
                    f"download of {url} stopped at {exc.received}{total} bytes ({exc.reason}) "
                    f"after {attempt} attempts; run the command again to resume from {part}"
                ) from None
    _verify_part(url, part, sha256=sha256, size=size, announced=announced)
    os.replace(part, dest)
    return dest


def _verify_part(
    url: str, part: Path, *, sha256: str | None, size: int | None, announced: int | None
) -> None:
    got_size = part.stat().st_size
    if sha256 is not None:
        got = sha256_of(part)
        if got != sha256.lower():
            part.unlink(missing_ok=True)
            raise SrbenchError(
                f"checksum mismatch for {url}: expected sha256 {sha256.lower()}, got {got}; "
                "the download was deleted: try again, or check the URL/mirror"
            )
        return
    expected = size if size is not None else announced
    if expected is not None and got_size != expected:
        part.unlink(missing_ok=True)
        raise SrbenchError(
            f"size mismatch for {url}: expected {expected} bytes, got {got_size}; "
            "the download was deleted: try again, or check the URL/mirror"
        )
    what = "size only" if expected is not None else "nothing (no checksum or size known)"
    warnings.warn(f"no sha256 known for {url}; verified by {what}", DownloadWarning, stacklevel=3)


def _open(url: str, start: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": f"srbench/{__version__}"}
    if start > 0:
        headers["Range"] = f"bytes={start}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and start > 0:
            raise
        raise SrbenchError(
            f"cannot download {url}: HTTP {exc.code} {exc.reason}; check the URL (or {MIRROR_ENV})"
        ) from None
    except urllib.error.URLError as exc:
        # A reset or a timeout is worth retrying; a refused connection or DNS failure is not.
        if isinstance(exc.reason, (TimeoutError, ConnectionResetError, ConnectionAbortedError)):
            raise _Interrupted(start, None, f"connection failed: {exc.reason}") from None
        raise SrbenchError(
            f"cannot reach {url}: {exc.reason}; check the network connection (or set {MIRROR_ENV})"
        ) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise _Interrupted(start, None, f"connection failed: {exc}") from None


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _fetch(url: str, part: Path, *, progress: bool, timeout: float) -> int | None:
    """Fetch into ``part``, resuming it; returns the full size the server announced (or None)."""
    start = part.stat().st_size if part.is_file() else 0
    try:
        response = _open(url, start, timeout)
    except urllib.error.HTTPError:
        # 416: the .part does not fit the remote file (already complete, or the file changed).
        part.unlink(missing_ok=True)
        start = 0
        response = _open(url, 0, timeout)
    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        remaining = int(length) if length is not None and length.isdigit() else None
        if start > 0 and status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != start:
                raise SrbenchError(
                    f"server for {url} answered a resume request with the wrong range "
                    f"({response.headers.get('Content-Range')!r}); delete {part} and try again"
                )
            total = int(match.group(3)) if match.group(3) != "*" else None
            mode = "ab"
        else:
            start, mode = 0, "wb"  # no resume support: start over
            total = remaining
        with open(part, mode) as out:
            received = _stream(
                response, out, start=start, total=total, label=part.name[:-5], progress=progress
            )
    if total is not None and received < total:
        raise _Interrupted(received, total, "the server closed the connection early")
    return total


def _stream(
    response: http.client.HTTPResponse,
    out: BinaryIO,
    *,
    start: int,
    total: int | None,
    label: str,
    progress: bool,
) -> int:
    """Copy the body to ``out``; returns the bytes now in the file (``start`` + what arrived)."""
    received = start
    bar = _progress_bar(progress)
    with bar:
        task = bar.add_task(label, total=total, completed=start) if bar is not None else None
        while True:
            try:
                block = response.read(CHUNK_BYTES)
            except http.client.IncompleteRead as exc:
                out.write(exc.partial)
                received += len(exc.partial)
                raise _Interrupted(received, total, "the server closed the connection early") from None
            except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
                raise _Interrupted(received, total, f"connection lost: {exc or type(exc).__name__}") from None
            if not block:
                break
            out.write(block)
            received += len(block)
            if bar is not None and task is not None:
                bar.update(task, completed=received)
    return received


def _progress_bar(enabled: bool) -> Any:
    """A rich progress bar for bytes on stderr, or a do-nothing context when disabled."""
    if not enabled:
        return _NullProgress()
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )


class _NullProgress:
    """Stands in for rich's Progress when no bar is wanted (``bar is None`` checks skip it)."""

    def __enter__(self) -> _NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> None:
        return None

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


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
        os.replace(source, dest_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest_dir


# --------------------------------------------------------------------------- dataset catalogue


@dataclass(frozen=True)
class RemoteFile:
    """One archive of a downloadable dataset.

    ``name`` is the file name under the base URL; ``sha256``/``size`` (bytes) may be None
    when unknown; ``archive_root`` is the folder inside the archive that becomes ``target``
    (a folder under the download destination); ``scale`` is None for files every scale needs.
    """

    name: str
    sha256: str | None
    size: int | None
    target: str
    archive_root: str | None
    scale: int | None


@dataclass(frozen=True)
class RemoteDataset:
    """A dataset srbench can download: ``base_url`` + each file's name.

    ``data_path`` is what to pass to ``--data`` afterwards, relative to the destination.
    """

    key: str
    description: str
    base_url: str
    data_path: str
    files: tuple[RemoteFile, ...]

    @property
    def scales(self) -> tuple[int, ...]:
        """The scales with their own LR archive (empty when every file serves all scales)."""
        return tuple(sorted({f.scale for f in self.files if f.scale is not None}))

    def url(self, item: RemoteFile) -> str:
        """The file's URL, honouring ``$SRBENCH_DATA_MIRROR``."""
        base = os.environ.get(MIRROR_ENV) or self.base_url
        return base.rstrip("/") + "/" + item.name


def remote_datasets() -> dict[str, RemoteDataset]:
    """The catalogue in ``dataset_urls.json``, keyed by name (``div2k-valid``, ...)."""
    raw = json.loads(_CATALOG_FILE.read_text(encoding="utf-8"))
    out: dict[str, RemoteDataset] = {}
    for key, entry in raw["datasets"].items():
        files = tuple(
            RemoteFile(
                name=f["name"],
                sha256=f.get("sha256"),
                size=f.get("size"),
                target=f["target"],
                archive_root=f.get("archive_root"),
                scale=f.get("scale"),
            )
            for f in entry["files"]
        )
        out[key] = RemoteDataset(
            key=key,
            description=entry["description"],
            base_url=entry["base_url"],
            data_path=entry.get("data_path", "."),
            files=files,
        )
    return out


def fetch_dataset(
    key: str, dest: Path, *, scale: int = 4, progress: bool = True, keep_archives: bool = False
) -> Path:
    """Download and extract dataset ``key`` under ``dest``; returns the path for ``--data``.

    Folders that already exist and are non-empty are skipped, so a second call downloads
    nothing. Archives go to ``dest/.srbench-downloads/`` and are deleted after a successful
    extraction unless ``keep_archives``.
    """
    catalog = remote_datasets()
    if key not in catalog:
        raise SrbenchError(f"unknown dataset {key!r}; choose one of {', '.join(sorted(catalog))}")
    entry = catalog[key]
    if entry.scales and scale not in entry.scales:
        scales = ", ".join(str(s) for s in entry.scales)
        raise SrbenchError(f"{key} has LR for --scale {scales} only, not {scale}")
    dest = Path(dest)
    staging = dest / ".srbench-downloads"
    for item in entry.files:
        if item.scale is not None and item.scale != scale:
            continue
        target = dest / item.target
        if target.is_dir() and any(target.iterdir()):
            continue
        archive = download(
            entry.url(item), staging / item.name, sha256=item.sha256, size=item.size, progress=progress
        )
        if target.is_dir():
            target.rmdir()  # an empty leftover folder; extract_archive wants to create it
        extract_archive(archive, target, subdir=item.archive_root)
        if not keep_archives:
            archive.unlink(missing_ok=True)
    if staging.is_dir() and not any(staging.iterdir()):
        staging.rmdir()
    return dest / entry.data_path
