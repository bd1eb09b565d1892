"""The decoded-image cache: a dataset decoded once per run, read back by every model and worker."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from srbench.files import atomic_open, atomic_write_text


class ImageCache:
    """A dataset decoded once per run into ``.npy`` files, read back per model.

    Memory stays bounded whatever the dataset size: at most four decoded pairs while the
    cache is built (two prefetched ahead), one pair per model while measuring; every model
    (and every worker process) reads the same decoded arrays.
    """

    def __init__(self, root: Path, names: list[str]) -> None:
        self.root = Path(root)
        self.names = names

    @classmethod
    def build(cls, dataset: Any, root: Path | None = None) -> ImageCache:
        """Decode every pair of ``dataset`` (an iterable of ``ImagePair``) into ``root``."""
        root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="srbench-images-"))
        root.mkdir(parents=True, exist_ok=True)
        names = []
        # Decode a couple of images ahead on a thread while this one is written out.
        pairs = dataset.prefetch(2) if hasattr(dataset, "prefetch") else iter(dataset)
        for i, pair in enumerate(pairs):
            for role, arr in (("lr", pair.lr), ("hr", pair.hr)):
                with atomic_open(root / f"{i:05d}_{role}.npy") as fh:
                    np.save(fh, np.ascontiguousarray(arr))
            names.append(pair.name)
        # names.txt last: a cache without it (a build that crashed) cannot be opened.
        atomic_write_text(root / "names.txt", "\n".join(names) + "\n")
        return cls(root, names)

    @classmethod
    def open(cls, root: Path) -> ImageCache:
        """Re-open a cache built by :meth:`build` (e.g. in a worker process)."""
        names = (Path(root) / "names.txt").read_text().splitlines()
        return cls(Path(root), names)

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for i, name in enumerate(self.names):
            yield name, np.load(self.root / f"{i:05d}_lr.npy"), np.load(self.root / f"{i:05d}_hr.npy")

    def first_lr(self) -> np.ndarray:
        """The first LR image (warm-up input)."""
        return np.load(self.root / "00000_lr.npy")
