"""Finding official checkpoints on disk and checking them.

Resolution order for a model at a scale: an explicit ``--weights NAME=PATH`` file, then
``$SRBENCH_WEIGHTS_DIR/<file_name>``, then the user cache folder
(``$SRBENCH_CACHE_DIR/weights`` or ``~/.cache/srbench/weights``). Official files found in
the folders must match the registry's sha256; explicit user files are not checked (they may
be the user's own training). Downloads go through :func:`fetch_weights`, only when asked.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from srbench.core.download import download, sha256_of
from srbench.core.errors import SrbenchError
from srbench.core.paths import cache_root
from srbench.models.registry import ModelEntry, WeightsSpec

WeightsSource = Literal["explicit", "SRBENCH_WEIGHTS_DIR", "cache"]


@dataclass(frozen=True)
class WeightsFile:
    """A checkpoint file chosen for a run.

    Attributes:
        path: the file.
        sha256: lowercase hex digest of its bytes.
        size_bytes: its size in bytes.
        source: where it was found: ``"explicit"``, ``"SRBENCH_WEIGHTS_DIR"`` or ``"cache"``.
    """

    path: Path
    sha256: str
    size_bytes: int
    source: WeightsSource


def weights_cache_dir() -> Path:
    """``$SRBENCH_CACHE_DIR/weights`` when set, else ``~/.cache/srbench/weights``."""
    return cache_root() / "weights"


@functools.lru_cache(maxsize=64)
def _sha256_cached(path: str, _identity: tuple[int, ...]) -> str:
    return sha256_of(Path(path))


def sha256_file(path: Path) -> str:
    """Lowercase hex sha256 of a file, memoised within this process.

    The memo is keyed by the file's identity, not by its modification time alone: device,
    inode, size, mtime and ctime. ``cp -p``/``rsync -a`` can set an old mtime on new content,
    but not the ctime, and a file replaced by ``os.replace`` gets a new inode.
    """
    stat = Path(path).stat()
    identity = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    return _sha256_cached(str(Path(path).resolve()), identity)


#: Base URL replacing every checkpoint's upstream URL (``BASE/<file_name>``); for mirrors
#: and for tests against a local server.
MIRROR_ENV = "SRBENCH_WEIGHTS_MIRROR"
#: Set to 1 to forbid downloads (same as ``--offline``).
OFFLINE_ENV = "SRBENCH_OFFLINE"


def offline_mode(flag: bool = False) -> bool:
    """True when downloads are forbidden by ``--offline`` or ``SRBENCH_OFFLINE=1``."""
    return flag or os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def weights_url(spec: WeightsSpec) -> str:
    """Where ``spec`` is downloaded from: the mirror when set, else the pinned upstream URL."""
    mirror = os.environ.get(MIRROR_ENV)
    return f"{mirror.rstrip('/')}/{spec.file_name}" if mirror else spec.url


def fetch_weights(entry: ModelEntry, scale: int, *, progress: bool = True) -> WeightsFile:
    """Download ``entry``'s official x``scale`` checkpoint into the cache, sha256-verified.

    Already present and verified: nothing is downloaded. A failed or mismatching download
    leaves nothing at the destination (see :func:`srbench.core.download.download`).
    """
    spec = entry.weights_for(scale)
    if spec is None:
        raise SrbenchError(f"model '{entry.name}' has no official x{scale} checkpoint to fetch")
    dest = weights_cache_dir() / spec.file_name
    download(
        weights_url(spec),
        dest,
        sha256=spec.sha256,
        size=spec.size_bytes,
        progress=progress,
        mirror_env=MIRROR_ENV,
    )
    return WeightsFile(dest, spec.sha256, dest.stat().st_size, "cache")


def weights_dir_problem() -> str | None:
    """What is wrong with ``$SRBENCH_WEIGHTS_DIR`` (set but missing, or not a folder), else None."""
    value = os.environ.get("SRBENCH_WEIGHTS_DIR")
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.exists():
        return f"SRBENCH_WEIGHTS_DIR={value} does not exist (mistyped?)"
    if not path.is_dir():
        return f"SRBENCH_WEIGHTS_DIR={value} is not a folder"
    return None


def missing_weights_reason(entry: ModelEntry, scale: int, *, offline: bool, name: str | None = None) -> str:
    """Why ``entry`` runs without weights at ``scale``: what was looked for, where, and the
    exact next command (a row's ``reason``; see :func:`resolve_weights` for the order)."""
    name = name or entry.name
    spec = entry.weights_for(scale)
    if spec is None:
        official = ", ".join(f"x{s}" for s in sorted(w.scale for w in entry.weights)) or "none"
        return (
            f"'{name}' has no official x{scale} checkpoint (official: {official}); "
            f"pass --weights {name}=PATH (efficiency figures only)"
        )
    places = []
    env_dir = os.environ.get("SRBENCH_WEIGHTS_DIR")
    problem = weights_dir_problem()
    if env_dir:
        places.append(problem or f"SRBENCH_WEIGHTS_DIR={env_dir}")
    else:
        places.append("SRBENCH_WEIGHTS_DIR (not set)")
    places.append(f"the cache {weights_cache_dir()}")
    why = "downloads are off (--offline or SRBENCH_OFFLINE=1)" if offline else "it was not downloaded"
    return (
        f"official x{scale} weights {spec.file_name} not found in {'; '.join(places)}, and {why}; "
        f"run 'srbench weights fetch {entry.name}', point SRBENCH_WEIGHTS_DIR at the folder holding "
        f"{spec.file_name}, or pass --weights {name}=PATH (efficiency figures only)"
    )


def resolve_weights(
    entry: ModelEntry, scale: int, explicit: Path | None = None, *, fetch: bool = False
) -> WeightsFile | None:
    """The checkpoint to use for ``entry`` at ``scale``, or None when none is available.

    With ``fetch``, an official checkpoint found nowhere on disk is downloaded into the
    cache (:func:`fetch_weights`).

    Raises :class:`SrbenchError` when ``explicit`` does not exist, or when an official
    file found in ``SRBENCH_WEIGHTS_DIR`` or the cache has the wrong sha256.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise SrbenchError(
                f"--weights {entry.name}={explicit}: file not found; give the path of a checkpoint file"
            )
        return WeightsFile(path, sha256_file(path), path.stat().st_size, "explicit")
    spec = entry.weights_for(scale)
    if spec is None:
        return None
    folders: list[tuple[Path, WeightsSource]] = []
    env_dir = os.environ.get("SRBENCH_WEIGHTS_DIR")
    if env_dir:
        folders.append((Path(env_dir).expanduser(), "SRBENCH_WEIGHTS_DIR"))
    folders.append((weights_cache_dir(), "cache"))
    for folder, source in folders:
        path = folder / spec.file_name
        if not path.is_file():
            continue
        digest = sha256_file(path)
        if digest != spec.sha256:
            raise SrbenchError(
                f"weights file {path} has sha256 {digest[:12]}… but the official "
                f"{spec.file_name} has {spec.sha256[:12]}…; delete or replace it "
                f"(upstream: {spec.url})"
            )
        return WeightsFile(path, digest, path.stat().st_size, source)
    if fetch:
        return fetch_weights(entry, scale)
    return None
