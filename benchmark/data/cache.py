"""The decoded-image cache: a dataset decoded once per run, read back by every model and worker."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from srbench.core.files import atomic_open, atomic_write_text


class ImageCache:
    """A dataset decoded once per run into ``.npy`` files, read back per model.

    Memory stays bounded whatever the dataset size: at most four decoded pairs while the
    cache is built (two prefetched ahead), one pair per model while measuring; every model
    (and every worker process) reads the same decoded arrays.
    """

    def __init__(self, root: Path, names: list[str]) -> None:
        self.root = Path(root)
        self.names = names
        self._lr_shapes: list[tuple[int, ...]] | None = None

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

    def prefetched(self, *, pin_memory: bool = False) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """Like iterating, but the next pair is read on a loader thread while this one is used.

        With ``pin_memory`` the arrays live in pinned (page-locked) host memory (numpy views of
        pinned tensors), so their host-to-device copies are non-blocking. The protocol uses it
        on CUDA, where the thread's read overlaps the device's forward; on the CPU it iterates
        plainly (a thread would compete with the timed forward for the cores).
        """
        import concurrent.futures

        def load(i: int) -> tuple[str, np.ndarray, np.ndarray]:
            lr = np.load(self.root / f"{i:05d}_lr.npy")
            hr = np.load(self.root / f"{i:05d}_hr.npy")
            if pin_memory:
                import torch

                # .numpy() of a tensor keeps the tensor (and its pinned memory) alive.
                lr = torch.from_numpy(lr).pin_memory().numpy()
                hr = torch.from_numpy(hr).pin_memory().numpy()
            return self.names[i], lr, hr

        if not self.names:
            return
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="srbench-loader") as pool:
            pending = pool.submit(load, 0)
            for i in range(len(self.names)):
                pair = pending.result()
                if i + 1 < len(self.names):
                    pending = pool.submit(load, i + 1)
                yield pair

    def lr_shapes(self) -> list[tuple[int, ...]]:
        """Each LR image's (H, W, 3) shape, in order, read from the file headers (no decoding)
        once: a cache never changes after :meth:`build`."""
        if self._lr_shapes is None:
            self._lr_shapes = [
                tuple(np.load(self.root / f"{i:05d}_lr.npy", mmap_mode="r").shape) for i in range(len(self))
            ]
        return list(self._lr_shapes)

    def lr(self, index: int) -> np.ndarray:
        """LR image ``index`` (uint8 H×W×3)."""
        return np.load(self.root / f"{index:05d}_lr.npy")

    def first_lr(self) -> np.ndarray:
        """The first LR image (warm-up input)."""
        return self.lr(0)
