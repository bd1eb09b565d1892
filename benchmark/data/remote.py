"""Downloadable SR datasets: the catalogue (``dataset_urls.json``) and fetching one.

Dataset URLs, sizes and SHA-256 sums live in ``dataset_urls.json`` next to this module (the
DIV2K figures are the ones TensorFlow Datasets publishes for the same files). The base URL
of every dataset can be replaced with the environment variable ``SRBENCH_DATA_MIRROR``; the
file names stay the same. Downloads and extraction are :mod:`srbench.core.download`'s.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from srbench.core.download import MIRROR_ENV, download, extract_archive
from srbench.core.errors import SrbenchError

_CATALOG_FILE = Path(__file__).with_name("dataset_urls.json")


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
