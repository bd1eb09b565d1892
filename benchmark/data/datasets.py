"""SR datasets: the embedded sample set, every common on-disk layout, checks and LR caching.

Conventions:

* Every image is uint8 ``(H, W, 3)`` RGB (see :mod:`srbench.data.imageio`).
* HR is mod-cropped to the scale (top-left ``H - H % s`` rows, ``W - W % s`` columns) and the
  LR must then be exactly ``(H/s, W/s)``; anything else is a problem, never silently cropped.
* Images are ordered by file name, lexicographically (``sorted`` on the name string), which is
  how the NTIRE harness orders DIV2K_LSDIR (the LSDIR images sort before 0801-0900).
* A pair's ``name`` is the stem of its HR file (``0801``), or the skimage name for the sample.
* Sizes in messages are ``WIDTHxHEIGHT``.

Layouts (``layout=`` forces one; otherwise detected from the folder names under PATH):

``sample``
    No PATH: scikit-image's bundled photographs astronaut, chelsea, coffee, rocket. LR is
    ``imresize_uint8(modcrop(hr, s), 1/s)`` (MATLAB bicubic), computed in memory.
    ``--data sample-mini`` is the same set with each HR cut to its central 96x96 square.
``div2k``
    ``DIV2K_{split}_HR/0801.png`` + ``DIV2K_{split}_LR_{degradation}/X{s}/0801x{s}.png``; PATH
    is the folder holding them, a ``DIV2K/`` folder inside PATH, or the HR folder itself.
``ntire-esr``
    The NTIRE ESR harness: ``DIV2K_LSDIR_{split}_HR/*.png`` + ``DIV2K_LSDIR_{split}_LR/*x4.png``
    (also ``LSDIR_DIV2K_test_HR``, and the 2022-23 flat ``DIV2K_valid_LR/0801x4.png``).
``benchmark``
    Set5/Set14/B100/Urban100/Manga109 as distributed: ``HR/`` + ``LR_bicubic/X{s}/`` (EDSR) or
    ``GTmod12/`` + ``LRbicx{s}/`` (BasicSR). LR names match the HR stem with or without ``x{s}``.
``paired``
    Two folders, ``hr=`` and ``lr=`` (or ``PATH/HR`` + ``PATH/LR``), matched like ``benchmark``.
``hr-only``
    Any folder of images. LR is generated with MATLAB bicubic from the mod-cropped HR.

Generated-LR cache (``hr-only``): LR PNGs are written to ``<HR folder>_LR_srbench/X{s}/{stem}x{s}.png``
beside the HR folder, i.e. ``PATH/../<name>_LR_srbench/X4/``. When ``$SRBENCH_CACHE_DIR`` is set, or
the HR folder's parent is not writable, they go to ``<cache root>/lr/<name>-<hash>/X{s}/`` instead
(cache root: ``$SRBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/srbench``, else ``~/.cache/srbench``;
the hash is of the HR folder's absolute path). The cache is keyed by content, never by
modification time: beside each cached LR, ``{stem}x{s}.png.srbench.json`` records the SHA-256
of the HR file it was made from, the scale and :data:`LR_CACHE_VERSION` (see
:mod:`srbench.core.files`). A cached LR is used only when that record matches the HR file as it is
now; otherwise it is regenerated and a :class:`CacheWarning` names the file (an HR replaced by
``cp -p``, ``rsync -a`` or an updated release keeps an old mtime but not its hash).
``srbench data prepare`` fills the cache ahead of time; ``cache_lr=False`` neither reads nor
writes it.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from srbench.core.errors import SrbenchError
from srbench.core.files import file_sha256, read_stamp, stamp_matches, write_stamp
from srbench.core.paths import CACHE_ENV, cache_root
from srbench.data.imageio import (
    ImageInfo,
    is_image_file,
    probe_image,
    read_image,
    truncation,
    write_png_atomic,
)
from srbench.data.imresize import imresize_uint8, modcrop

LAYOUTS: tuple[str, ...] = ("sample", "div2k", "ntire-esr", "benchmark", "paired", "hr-only")
SPLITS: tuple[str, ...] = ("train", "valid", "test")
DEGRADATIONS: tuple[str, ...] = ("bicubic", "unknown")
#: The built-in sample set: scikit-image ``skimage.data`` functions, in this order.
SAMPLE_IMAGES: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket")
#: ``--data sample-mini``: the same photographs, HR cut to their central
#: ``SAMPLE_MINI_CROP``-pixel square (the CI regression fixture: seconds, not minutes).
SAMPLE_MINI = "sample-mini"
SAMPLE_MINI_CROP = 96
#: Version of the generated-LR recipe recorded in each cache stamp; bump it when the way LR is
#: generated changes (imresize, mod-crop), so every cache made the old way is regenerated.
LR_CACHE_VERSION = 1


class CacheWarning(UserWarning):
    """A cached file did not match its source and was regenerated (names the file)."""


def _center_crop(img: np.ndarray, size: int) -> np.ndarray:
    top = (img.shape[0] - size) // 2
    left = (img.shape[1] - size) // 2
    return img[top : top + size, left : left + size]


#: How many problems the :class:`SrbenchError` raised by :func:`load_dataset` names.
PROBLEMS_NAMED = 3

# Folder names of the benchmark sets (EDSR's benchmark.tar and BasicSR's copies).
_BENCH_HR_DIRS = ("HR", "GTmod12")
_PAIRED_HR_DIRS = ("HR", "hr", "GT", "gt")
_PAIRED_LR_DIRS = ("LR", "lr", "LQ", "lq")

T = TypeVar("T")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ImagePair:
    """One decoded test pair.

    ``hr`` is uint8 HxWx3 RGB mod-cropped to the scale; ``lr`` uint8 hxwx3 RGB with
    ``hr.shape == (h*scale, w*scale, 3)``; ``name`` the HR file's stem (``"0801"``).
    """

    name: str
    hr: np.ndarray
    lr: np.ndarray


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a dataset, as one self-contained line.

    ``kind`` is one of ``missing-lr``, ``missing-folder``, ``size``, ``duplicate``, ``empty``,
    ``unreadable``, ``bit-depth``, ``too-small``; ``path`` the file or folder at fault.
    """

    kind: str
    path: Path | None
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class PairSource:
    """Where one pair comes from on disk.

    ``hr_path`` is None only for the sample set (``name`` is then a :data:`SAMPLE_IMAGES`
    entry); ``lr_path`` None means the LR is generated, and cached at ``lr_cache`` if set.
    """

    name: str
    hr_path: Path | None
    lr_path: Path | None = None
    lr_cache: Path | None = None


# --------------------------------------------------------------------------- prefetch


def prefetch(items: Iterable[T], n: int = 2) -> Iterator[T]:
    """Iterate ``items`` while a background thread produces up to ``n`` items ahead.

    Memory bound: at most ``n`` finished items wait in the queue, plus one being produced by
    the thread and the one the caller holds, so ``n + 2`` items in all. ``n < 1`` iterates
    in the caller's thread. An exception in the producer is re-raised in the caller; closing
    the iterator early stops the producer after its current item.
    """
    if n < 1:
        yield from items
        return
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=n)
    stop = threading.Event()

    def put(message: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(("error", exc))

    worker = threading.Thread(target=produce, name="srbench-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        worker.join()


# --------------------------------------------------------------------------- dataset


@dataclass
class Dataset:
    """A list of :class:`PairSource` plus how to decode them; iteration is lazy.

    ``root`` is the folder the user named (None for the sample set); ``problems`` are the
    structural problems found while resolving the layout (see :meth:`check`).
    """

    name: str
    scale: int
    layout: str
    sources: list[PairSource]
    root: Path | None = None
    allow_16bit: bool = False
    cache_lr: bool = True
    degradation: str = "bicubic"
    problems: list[Problem] = field(default_factory=list)
    hr_crop: int | None = None
    _warned_cache: bool = field(default=False, repr=False)

    def __len__(self) -> int:
        return len(self.sources)

    def names(self) -> list[str]:
        """Pair names in iteration order."""
        return [s.name for s in self.sources]

    def __iter__(self) -> Iterator[ImagePair]:
        """Decode pairs one at a time, in order (a generator: one pair in memory)."""
        for source in self.sources:
            yield self.load(source)

    def prefetch(self, n: int = 2) -> Iterator[ImagePair]:
        """Like ``iter(self)`` but decodes up to ``n`` pairs ahead on a background thread.

        At most ``n + 2`` pairs are alive at once (see :func:`prefetch`).
        """
        return prefetch(iter(self), n)

    def describe(self) -> dict[str, Any]:
        """``{"name", "layout", "scale", "images", "root", "lr"}``; ``lr`` is ``"files"`` or
        ``"generated"`` (MATLAB bicubic from the mod-cropped HR)."""
        generated = any(s.lr_path is None for s in self.sources)
        return {
            "name": self.name,
            "layout": self.layout,
            "scale": self.scale,
            "images": len(self.sources),
            "root": str(self.root) if self.root is not None else None,
            "lr": "generated" if generated else "files",
        }

    # -- decoding --------------------------------------------------------------------------

    def _read_hr(self, source: PairSource) -> np.ndarray:
        if source.hr_path is None:
            import skimage.data

            img = np.asarray(getattr(skimage.data, source.name)(), dtype=np.uint8)
            if self.hr_crop is not None:
                img = _center_crop(img, self.hr_crop)
        else:
            img = read_image(source.hr_path, allow_16bit=self.allow_16bit)
        return np.ascontiguousarray(modcrop(img, self.scale))

    def load(self, source: PairSource | int | str) -> ImagePair:
        """Decode one pair, given its :class:`PairSource`, index or name."""
        if isinstance(source, int):
            source = self.sources[source]
        elif isinstance(source, str):
            matches = [s for s in self.sources if s.name == source]
            if not matches:
                raise SrbenchError(f"dataset {self.name} has no image named {source!r}; see its names()")
            source = matches[0]
        hr = self._read_hr(source)
        s = self.scale
        want = (hr.shape[0] // s, hr.shape[1] // s)
        if source.lr_path is not None:
            lr = read_image(source.lr_path, allow_16bit=self.allow_16bit)
            if lr.shape[:2] != want:
                raise SrbenchError(
                    f"LR {source.lr_path} is {lr.shape[1]}x{lr.shape[0]} but HR {source.hr_path} needs "
                    f"{want[1]}x{want[0]} at x{s} after mod-crop; fix or regenerate the LR"
                )
        else:
            lr = self._generated_lr(source, hr)
        return ImagePair(name=source.name, hr=hr, lr=lr)

    def _cache_key(self, source: PairSource) -> dict[str, Any]:
        """What a cached LR of ``source`` must have been made from (see the module docstring)."""
        assert source.hr_path is not None
        return {
            "kind": "srbench-generated-lr",
            "version": LR_CACHE_VERSION,
            "scale": self.scale,
            "recipe": "imresize_uint8(modcrop(hr, scale), 1/scale)",
            "source_sha256": file_sha256(source.hr_path),
        }

    def _cache_valid(self, source: PairSource, want: tuple[int, int]) -> bool:
        cache = source.lr_cache
        if cache is None or not self.cache_lr or not cache.is_file() or source.hr_path is None:
            return False
        try:
            if not stamp_matches(cache, self._cache_key(source)):
                stamp = read_stamp(cache)
                why = (
                    "has no content record (made by an older srbench or interrupted)"
                    if stamp is None
                    else f"was made from different content than {source.hr_path} holds now"
                )
                warnings.warn(f"cached LR {cache} {why}; regenerating it", CacheWarning, stacklevel=3)
                return False
            info = probe_image(cache)
        except (OSError, SrbenchError):
            return False
        return (info.height, info.width) == want and info.bits == 8

    def _write_cache(self, source: PairSource, lr: np.ndarray) -> None:
        """Write ``lr`` to ``source.lr_cache``, then its content stamp (file first: no stamp, no use)."""
        assert source.lr_cache is not None
        write_png_atomic(source.lr_cache, lr)
        write_stamp(source.lr_cache, self._cache_key(source))

    def _generated_lr(self, source: PairSource, hr: np.ndarray) -> np.ndarray:
        want = (hr.shape[0] // self.scale, hr.shape[1] // self.scale)
        if self._cache_valid(source, want):
            return read_image(source.lr_cache)  # type: ignore[arg-type]
        lr = np.asarray(imresize_uint8(hr, 1.0 / self.scale))
        if source.lr_cache is not None and self.cache_lr and source.hr_path is not None:
            try:
                self._write_cache(source, lr)
            except OSError as exc:
                if not self._warned_cache:
                    self._warned_cache = True
                    warnings.warn(
                        f"cannot cache generated LR in {source.lr_cache.parent} ({exc.strerror}); "
                        "LR will be recomputed on every run (set SRBENCH_CACHE_DIR to a writable folder)",
                        stacklevel=2,
                    )
        return lr

    def prepare(self) -> int:
        """Write every missing or stale generated LR to its cache; returns how many were written."""
        written = 0
        for source in self.sources:
            if source.lr_path is not None or source.lr_cache is None:
                continue
            hr = self._read_hr(source)
            want = (hr.shape[0] // self.scale, hr.shape[1] // self.scale)
            if self._cache_valid(source, want):
                continue
            self._write_cache(source, np.asarray(imresize_uint8(hr, 1.0 / self.scale)))
            written += 1
        return written

    # -- checks ----------------------------------------------------------------------------

    def check(self, *, decode: bool = False) -> list[Problem]:
        """All problems: structural ones from resolution plus per-file header checks.

        Header checks (readable, 8-bit, big enough, HR = LR x scale after mod-crop) read only
        image headers. ``decode=True`` also decodes every file, which catches truncated data.
        """
        problems: list[Problem] = []
        for problem in self.problems:
            problems.append(problem)
            if problem.kind == "missing-lr" and problem.path is not None:
                # An HR without LR is not a pair, but its own defects still belong in the report.
                self._probe(problem.path, "HR", problems, decode)
        for source in self.sources:
            problems.extend(self._check_source(source, decode=decode))
        return problems

    def _rel(self, path: Path) -> str:
        if self.root is not None:
            try:
                return str(path.relative_to(self.root))
            except ValueError:
                pass
        return str(path)

    def _probe(self, path: Path, role: str, problems: list[Problem], decode: bool) -> ImageInfo | None:
        rel = self._rel(path)
        try:
            info = probe_image(path)
        except SrbenchError as exc:
            problems.append(
                Problem("unreadable", path, f"{role} {rel} is not a readable image ({_cause(exc)})")
            )
            return None
        if info.bits == 32 or (info.bits == 16 and not self.allow_16bit):
            problems.append(
                Problem(
                    "bit-depth",
                    path,
                    f"{role} {rel} is {info.bits}-bit; srbench reads 8-bit images "
                    "(convert it, or pass --allow-16bit to keep the high byte)",
                )
            )
            return None
        if info.frames > 1:
            problems.append(
                Problem(
                    "frames",
                    path,
                    f"{role} {rel} holds {info.frames} frames (animated or multi-page); "
                    "srbench reads single images (extract the frames to separate PNG files)",
                )
            )
            return None
        cut = truncation(path)
        if cut is not None:
            problems.append(
                Problem("unreadable", path, f"{role} {rel} is not a readable image ({cut}); replace it")
            )
            return None
        if decode:
            try:
                read_image(path, allow_16bit=self.allow_16bit)
            except SrbenchError as exc:
                problems.append(
                    Problem("unreadable", path, f"{role} {rel} cannot be decoded ({_cause(exc)})")
                )
                return None
        return info

    def _check_source(self, source: PairSource, *, decode: bool) -> list[Problem]:
        problems: list[Problem] = []
        if source.hr_path is None:
            return problems  # the sample images are known-good
        s = self.scale
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # alpha warnings belong to reading, not to checking
            hr = self._probe(source.hr_path, "HR", problems, decode)
            lr = self._probe(source.lr_path, "LR", problems, decode) if source.lr_path is not None else None
        if hr is None:
            return problems
        hr_rel = self._rel(source.hr_path)
        if hr.width < s or hr.height < s:
            problems.append(
                Problem(
                    "too-small", source.hr_path, f"HR {hr_rel} is {hr.size_text}, smaller than the scale x{s}"
                )
            )
            return problems
        want_w, want_h = hr.width // s, hr.height // s
        # PSNR/SSIM-Y crop ``scale`` pixels from every side of the mod-cropped HR; SSIM needs one
        # full window in what is left (the run would fail on this image after every model ran).
        left_w, left_h = want_w * s - 2 * s, want_h * s - 2 * s
        if min(left_w, left_h) < SSIM_MIN_SIDE:
            side = SSIM_MIN_SIDE + 2 * s
            left = f"{max(left_w, 0)}x{max(left_h, 0)}"
            problems.append(
                Problem(
                    "too-small-for-ssim",
                    source.hr_path,
                    f"HR {hr_rel} is {hr.size_text}: {left} after the x{s} border crop of {s} px, smaller "
                    f"than the {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} SSIM window; HR images must be at least "
                    f"{side}x{side} at x{s} (remove or replace it)",
                )
            )
        if lr is not None and (lr.width, lr.height) != (want_w, want_h):
            cropped = f"{want_w * s}x{want_h * s}"
            problems.append(
                Problem(
                    "size",
                    source.lr_path,
                    f"LR {self._rel(source.lr_path)} is {lr.size_text} but HR {hr_rel} ({hr.size_text}, "  # type: ignore[arg-type]
                    f"{cropped} after mod-crop) needs {want_w}x{want_h} at x{s}",
                )
            )
        return problems


class DatasetWarning(UserWarning):
    """A dataset image that can be read but not fully scored (e.g. too small for SSIM)."""


#: The SSIM window side (:data:`srbench.measure.metrics.SSIM_WINDOW`; ``tests/test_bad_inputs_26.py``
#: pins them equal): the smallest HR side left after the border crop that SSIM can score.
SSIM_MIN_SIDE = 11


def _cause(exc: SrbenchError) -> str:
    # probe/read messages read "cannot read image PATH: REASON; replace ..."; keep REASON.
    text = str(exc)
    if ": " in text:
        text = text.split(": ", 1)[1]
    return text.split("; ", 1)[0]


# --------------------------------------------------------------------------- folder scanning


def _scan_images(folder: Path, role: str, root: Path | None) -> tuple[list[Path], list[Problem]]:
    """Image files directly in ``folder`` sorted by name; duplicate stems and emptiness reported."""
    problems: list[Problem] = []
    files = sorted((p for p in folder.iterdir() if is_image_file(p)), key=lambda p: p.name)
    shown = _show(folder, root)
    if not files:
        problems.append(
            Problem("empty", folder, f"{role} folder {shown} holds no images (.png, .jpg, .bmp, .tif, .webp)")
        )
    by_stem: dict[str, list[Path]] = {}
    for p in files:
        by_stem.setdefault(p.stem, []).append(p)
    kept = []
    for p in files:
        group = by_stem[p.stem]
        if group[0] is p:
            kept.append(p)
            if len(group) > 1:
                names = ", ".join(q.name for q in group)
                problems.append(
                    Problem("duplicate", p, f"{role} folder {shown} has duplicate stem {p.stem!r}: {names}")
                )
    return kept, problems


def _show(path: Path, root: Path | None) -> str:
    if root is not None:
        try:
            rel = path.relative_to(root)
            return str(rel) if str(rel) != "." else str(path)
        except ValueError:
            pass
    return str(path)


def _match_lr(
    hr_files: list[Path], lr_dir: Path, scale: int, root: Path | None
) -> tuple[list[PairSource], list[Problem]]:
    """Pair each HR file with ``{stem}x{scale}.*`` or ``{stem}.*`` in ``lr_dir``."""
    lr_files, problems = _scan_images(lr_dir, "LR", root)
    # _scan_images already reported an empty LR folder; one line is enough for that case.
    lr_by_stem = {p.stem: p for p in lr_files}
    sources: list[PairSource] = []
    for hr in hr_files:
        candidates = [
            lr_by_stem[c] for c in (f"{hr.stem}x{scale}", f"{hr.stem}X{scale}", hr.stem) if c in lr_by_stem
        ]
        if len(candidates) > 1:
            names = ", ".join(c.name for c in candidates)
            problems.append(
                Problem("duplicate", hr, f"HR {_show(hr, root)} matches several LR files: {names}")
            )
        if candidates:
            sources.append(PairSource(hr.stem, hr, candidates[0]))
        elif lr_files:
            expected = _show(lr_dir / f"{hr.stem}x{scale}.png", root)
            problems.append(
                Problem("missing-lr", hr, f"HR {_show(hr, root)} has no LR (expected {expected})")
            )
    return sources, problems


# --------------------------------------------------------------------------- layouts


def _div2k_root(path: Path, split: str) -> Path | None:
    """The folder holding ``DIV2K_{split}_HR``: PATH, PATH/DIV2K, or the HR folder's parent."""
    if path.name == f"DIV2K_{split}_HR":
        return path.parent
    for cand in (path, path / "DIV2K"):
        if (cand / f"DIV2K_{split}_HR").is_dir():
            return cand
    return None


def _ntire_hr_dir(path: Path, split: str) -> Path | None:
    names = (f"DIV2K_LSDIR_{split}_HR", f"LSDIR_DIV2K_{split}_HR")
    if path.name in names:
        return path
    for name in names:
        if (path / name).is_dir():
            return path / name
    return None


def _split_from_name(path: Path, split: str) -> str:
    """``DIV2K_train_HR`` passed directly implies the train split."""
    m = re.fullmatch(r"(?:DIV2K|DIV2K_LSDIR|LSDIR_DIV2K)_(train|valid|test)_HR", path.name)
    return m.group(1) if m else split


def _lr_cache_dir(hr_dir: Path, scale: int) -> Path:
    """Where generated LR for ``hr_dir`` is cached (see the module docstring)."""
    hr_dir = hr_dir.resolve()
    if not os.environ.get(CACHE_ENV) and os.access(hr_dir.parent, os.W_OK):
        return hr_dir.parent / f"{hr_dir.name}_LR_srbench" / f"X{scale}"
    digest = hashlib.sha256(str(hr_dir).encode()).hexdigest()[:10]
    return cache_root() / "lr" / f"{hr_dir.name}-{digest}" / f"X{scale}"


def _generic_name(folder: Path) -> str:
    """A dataset name for an HR folder: its own name, or its parent's if it is called HR/GT."""
    if folder.name in _PAIRED_HR_DIRS + _BENCH_HR_DIRS and folder.parent.name:
        return folder.parent.name
    return folder.name


def _build_paired(
    hr_dir: Path, lr_dir: Path, *, scale: int, layout: str, name: str, root: Path | None, **kw: Any
) -> Dataset:
    hr_files, problems = _scan_images(hr_dir, "HR", root)
    sources: list[PairSource] = []
    if hr_files:
        sources, more = _match_lr(hr_files, lr_dir, scale, root)
        problems += more
    return Dataset(name=name, scale=scale, layout=layout, sources=sources, root=root, problems=problems, **kw)


def _build_hr_only(hr_dir: Path, *, scale: int, root: Path | None, **kw: Any) -> Dataset:
    hr_files, problems = _scan_images(hr_dir, "HR", root)
    cache = _lr_cache_dir(hr_dir, scale)
    sources = [PairSource(p.stem, p, None, cache / f"{p.stem}x{scale}.png") for p in hr_files]
    return Dataset(
        name=_generic_name(hr_dir),
        scale=scale,
        layout="hr-only",
        sources=sources,
        root=root,
        problems=problems,
        **kw,
    )


def _missing_folder(folder: Path, root: Path | None, hint: str) -> Problem:
    return Problem("missing-folder", folder, f"LR folder {_show(folder, root)} does not exist; {hint}")


def _build_div2k(path: Path, *, scale: int, split: str, **kw: Any) -> Dataset:
    degradation = kw["degradation"]
    split = _split_from_name(path, split)
    base = _div2k_root(path, split)
    if base is None:
        raise SrbenchError(
            f"--layout div2k: no DIV2K_{split}_HR folder in {path} or {path / 'DIV2K'}; "
            "point --data at the folder holding DIV2K_*_HR (or pick another --layout)"
        )
    hr_dir = base / f"DIV2K_{split}_HR"
    lr_dir = base / f"DIV2K_{split}_LR_{degradation}" / f"X{scale}"
    name = f"DIV2K_{split}" if degradation == "bicubic" else f"DIV2K_{split}_{degradation}"
    if not lr_dir.is_dir():
        _, problems = _scan_images(hr_dir, "HR", path)
        hint = (
            f"download it (srbench data download div2k-{split} --scale {scale}) "
            "or use --layout hr-only to generate bicubic LR from the HR"
        )
        problems.append(_missing_folder(lr_dir, path, hint))
        return Dataset(name=name, scale=scale, layout="div2k", sources=[], root=path, problems=problems, **kw)
    return _build_paired(hr_dir, lr_dir, scale=scale, layout="div2k", name=name, root=path, **kw)


def _build_ntire(path: Path, *, scale: int, split: str, **kw: Any) -> Dataset:
    split = _split_from_name(path, split)
    hr_dir = _ntire_hr_dir(path, split)
    if hr_dir is None:
        # The 2022-23 harness: DIV2K_valid_HR + a flat DIV2K_valid_LR/0801x4.png.
        base = _div2k_root(path, split)
        if base is None or not (base / f"DIV2K_{split}_LR").is_dir():
            raise SrbenchError(
                f"--layout ntire-esr: no DIV2K_LSDIR_{split}_HR (or DIV2K_{split}_HR + DIV2K_{split}_LR) "
                f"folder in {path}; point --data at the folder holding them"
            )
        hr_dir = base / f"DIV2K_{split}_HR"
    # The harness's rule: the LR folder is the HR folder with _HR replaced by _LR.
    lr_dir = hr_dir.with_name(hr_dir.name[: -len("_HR")] + "_LR")
    root = path if path != hr_dir else path.parent
    name = hr_dir.name[: -len("_HR")]
    if not lr_dir.is_dir():
        _, problems = _scan_images(hr_dir, "HR", root)
        problems.append(_missing_folder(lr_dir, root, "put the x4 LR images there (e.g. 0801x4.png)"))
        return Dataset(
            name=name, scale=scale, layout="ntire-esr", sources=[], root=root, problems=problems, **kw
        )
    return _build_paired(hr_dir, lr_dir, scale=scale, layout="ntire-esr", name=name, root=root, **kw)


def _bench_dirs(path: Path, scale: int) -> tuple[Path, Path] | None:
    """(HR folder, LR folder) for a benchmark set folder, or None."""
    for hr_name, lr_rel in (("HR", f"LR_bicubic/X{scale}"), ("GTmod12", f"LRbicx{scale}")):
        if (path / hr_name).is_dir() and (path / lr_rel).is_dir():
            return path / hr_name, path / lr_rel
    return None


def _is_bench_set(path: Path) -> bool:
    return ((path / "HR").is_dir() and (path / "LR_bicubic").is_dir()) or (path / "GTmod12").is_dir()


def _build_benchmark(path: Path, *, scale: int, **kw: Any) -> Dataset:
    dirs = _bench_dirs(path, scale)
    if dirs is None:
        sets = (
            sorted(p.name for p in path.iterdir() if p.is_dir() and _is_bench_set(p)) if path.is_dir() else []
        )
        if sets:
            raise SrbenchError(
                f"{path} holds several benchmark sets ({', '.join(sets)}); pass one of them, "
                f"e.g. --data {path / sets[0]}"
            )
        if _is_bench_set(path):
            hr = "HR" if (path / "HR").is_dir() else "GTmod12"
            lr = f"LR_bicubic/X{scale}" if hr == "HR" else f"LRbicx{scale}"
            raise SrbenchError(
                f"benchmark set {path} has {hr}/ but no {lr}/ for x{scale}; "
                "check --scale, or use --layout hr-only to generate bicubic LR"
            )
        raise SrbenchError(
            f"--layout benchmark: {path} has neither HR/ + LR_bicubic/X{scale}/ "
            f"nor GTmod12/ + LRbicx{scale}/; "
            "point --data at one set folder such as Set5"
        )
    return _build_paired(dirs[0], dirs[1], scale=scale, layout="benchmark", name=path.name, root=path, **kw)


def _paired_dirs(path: Path) -> tuple[Path, Path] | None:
    hr = next((path / n for n in _PAIRED_HR_DIRS if (path / n).is_dir()), None)
    lr = next((path / n for n in _PAIRED_LR_DIRS if (path / n).is_dir()), None)
    return (hr, lr) if hr is not None and lr is not None else None


def _has_images(path: Path) -> bool:
    return any(is_image_file(p) for p in path.iterdir())


def _detect_layout(path: Path, scale: int, split: str) -> str:
    """The layout of ``path`` from its folder names; raises when nothing fits."""
    split_here = _split_from_name(path, split)
    if _ntire_hr_dir(path, split_here) is not None:
        return "ntire-esr"
    base = _div2k_root(path, split_here)
    if base is not None:
        has_official = any(base.glob(f"DIV2K_{split_here}_LR_*"))
        if not has_official and (base / f"DIV2K_{split_here}_LR").is_dir():
            return "ntire-esr"  # the 2022-23 flat DIV2K_valid_LR
        return "div2k"
    if _bench_dirs(path, scale) is not None or _is_bench_set(path):
        return "benchmark"
    if _paired_dirs(path) is not None:
        return "paired"
    if _has_images(path):
        return "hr-only"
    if any((path / n).is_dir() for n in _PAIRED_HR_DIRS) and not _has_images(path):
        return "hr-only"
    subsets = sorted(p.name for p in path.iterdir() if p.is_dir() and _is_bench_set(p))
    if subsets:
        return "benchmark"  # _build_benchmark names the sets to choose from
    raise SrbenchError(
        f"cannot tell the dataset layout of {path}: expected images, DIV2K_{split}_HR/, "
        f"DIV2K_LSDIR_{split}_HR/, HR/ + LR_bicubic/X{scale}/, or HR/ + LR/; "
        f"pass --layout (one of {', '.join(LAYOUTS[1:])})"
    )


# --------------------------------------------------------------------------- entry points


def _validate_options(scale: int, layout: str | None, split: str, degradation: str) -> None:
    if not isinstance(scale, int) or isinstance(scale, bool) or scale < 1:
        raise SrbenchError(f"--scale must be a positive integer, got {scale!r}")
    if layout is not None and layout not in LAYOUTS:
        raise SrbenchError(f"--layout {layout!r} is not known; use one of {', '.join(LAYOUTS)}")
    if split not in SPLITS:
        raise SrbenchError(f"--split {split!r} is not known; use one of {', '.join(SPLITS)}")
    if degradation not in DEGRADATIONS:
        raise SrbenchError(
            f"--degradation {degradation!r} is not known; use one of {', '.join(DEGRADATIONS)}"
        )


def _existing_dir(path: Path, what: str) -> Path:
    if not path.exists():
        raise SrbenchError(
            f"{what} {path} does not exist; pass an existing folder "
            "(or omit --data for the built-in sample set)"
        )
    if not path.is_dir():
        raise SrbenchError(f"{what} {path} is not a folder; pass the folder that holds the images")
    return path


def resolve_dataset(
    data: str | Path | None = None,
    *,
    scale: int = 4,
    layout: str | None = None,
    hr: Path | None = None,
    lr: Path | None = None,
    allow_16bit: bool = False,
    split: str = "valid",
    degradation: str = "bicubic",
    cache_lr: bool = True,
) -> Dataset:
    """Find the layout and the pairs, without checking the files (see :func:`load_dataset`).

    Raises :class:`SrbenchError` only for what prevents listing pairs at all (missing path,
    unknown layout, bad option); everything else is recorded in ``Dataset.problems``.
    """
    _validate_options(scale, layout, split, degradation)
    kw: dict[str, Any] = {"allow_16bit": allow_16bit, "cache_lr": cache_lr, "degradation": degradation}
    if degradation != "bicubic" and layout not in (None, "div2k"):
        raise SrbenchError(f"--degradation {degradation} exists only for --layout div2k")
    if hr is not None or lr is not None:
        if data is not None:
            raise SrbenchError("give either --data or --hr/--lr, not both")
        if hr is None:
            raise SrbenchError("--lr needs --hr too (the HR folder the LR images belong to)")
        hr_dir = _existing_dir(Path(hr), "HR folder")
        if lr is None:
            if layout not in (None, "hr-only"):
                raise SrbenchError(f"--layout {layout} needs --lr as well as --hr")
            return _build_hr_only(hr_dir, scale=scale, root=hr_dir, **kw)
        if layout not in (None, "paired"):
            raise SrbenchError(f"--hr/--lr give a paired dataset; drop --layout {layout}")
        lr_dir = _existing_dir(Path(lr), "LR folder")
        root = hr_dir.parent if hr_dir.parent == lr_dir.parent else None
        return _build_paired(
            hr_dir, lr_dir, scale=scale, layout="paired", name=_generic_name(hr_dir), root=root, **kw
        )
    if data is None or str(data) == SAMPLE_MINI:
        if layout not in (None, "sample"):
            raise SrbenchError(f"--layout {layout} needs --data PATH")
        sources = [PairSource(n, None) for n in SAMPLE_IMAGES]
        if data is None:
            return Dataset(name="sample", scale=scale, layout="sample", sources=sources, **kw)
        return Dataset(
            name=SAMPLE_MINI, scale=scale, layout="sample", sources=sources, hr_crop=SAMPLE_MINI_CROP, **kw
        )
    if layout == "sample":
        raise SrbenchError("--layout sample is the built-in set; drop --data to use it")
    path = _existing_dir(Path(data), "dataset path")
    if degradation != "bicubic":
        layout = layout or "div2k"
    if layout in (None, "benchmark") and path.name in _BENCH_HR_DIRS and _bench_dirs(path.parent, scale):
        path = path.parent  # the HR folder of a benchmark set: use the set, with its LR
    chosen = layout or _detect_layout(path, scale, split)
    if chosen == "div2k":
        return _build_div2k(path, scale=scale, split=split, **kw)
    if chosen == "ntire-esr":
        return _build_ntire(path, scale=scale, split=split, **kw)
    if chosen == "benchmark":
        return _build_benchmark(path, scale=scale, **kw)
    if chosen == "paired":
        dirs = _paired_dirs(path)
        if dirs is None:
            raise SrbenchError(
                f"--layout paired: {path} has no HR/ and LR/ folders; pass --hr and --lr instead"
            )
        return _build_paired(dirs[0], dirs[1], scale=scale, layout="paired", name=path.name, root=path, **kw)
    # hr-only: the folder itself, or its HR/GT subfolder when it holds no images directly.
    hr_dir = path
    if not _has_images(path):
        hr_dir = next((path / n for n in _PAIRED_HR_DIRS + _BENCH_HR_DIRS if (path / n).is_dir()), path)
    return _build_hr_only(hr_dir, scale=scale, root=path, **kw)


def dataset_options(config: dict[str, Any]) -> dict[str, Any]:
    """The :func:`load_dataset` keywords a run's ``config`` records beyond ``data``/``layout``/
    ``scale`` (``hr``, ``lr``, ``split``, ``degradation``, ``allow_16bit``), defaults when absent.

    Every reader of a run's data (``run`` itself, ``compare``) goes through this, so a run made
    with ``--allow-16bit`` or ``--hr/--lr`` is re-read the same way.
    """
    hr, lr = config.get("hr"), config.get("lr")
    return {
        "hr": Path(hr) if hr else None,
        "lr": Path(lr) if lr else None,
        "split": config.get("split") or "valid",
        "degradation": config.get("degradation") or "bicubic",
        "allow_16bit": bool(config.get("allow_16bit", False)),
    }


def check_dataset(
    data: str | Path | None = None,
    *,
    scale: int = 4,
    layout: str | None = None,
    hr: Path | None = None,
    lr: Path | None = None,
    allow_16bit: bool = False,
    split: str = "valid",
    degradation: str = "bicubic",
    decode: bool = False,
) -> list[Problem]:
    """Every problem with a dataset, collected rather than stopping at the first.

    Missing LR, LR sizes that are not HR/scale after mod-crop, duplicate stems, empty
    folders, unreadable files and 16-bit files. Reads headers only unless ``decode``.
    Raises :class:`SrbenchError` only when no pairs can be listed (see :func:`resolve_dataset`).
    """
    dataset = resolve_dataset(
        data,
        scale=scale,
        layout=layout,
        hr=hr,
        lr=lr,
        allow_16bit=allow_16bit,
        split=split,
        degradation=degradation,
    )
    return dataset.check(decode=decode)


def summarize_problems(where: str, problems: list[Problem], check_command: str) -> str:
    """The one-line summary: count, the first :data:`PROBLEMS_NAMED` problems, and what to run."""
    n = len(problems)
    shown = "; ".join(p.message for p in problems[:PROBLEMS_NAMED])
    more = f"; and {n - PROBLEMS_NAMED} more" if n > PROBLEMS_NAMED else ""
    noun = "problem" if n == 1 else "problems"
    return f"dataset {where} has {n} {noun}: {shown}{more}; run '{check_command}' for the full report"


def _check_command(data: Any, hr: Any, lr: Any, scale: int, layout: str | None) -> str:
    parts = ["srbench data check"]
    if data is not None:
        parts.append(str(data))
    if hr is not None:
        parts += ["--hr", str(hr)]
    if lr is not None:
        parts += ["--lr", str(lr)]
    parts += ["--scale", str(scale)]
    if layout is not None:
        parts += ["--layout", layout]
    return " ".join(parts)


def load_dataset(
    data: str | Path | None = None,
    *,
    scale: int = 4,
    layout: str | None = None,
    hr: Path | None = None,
    lr: Path | None = None,
    allow_16bit: bool = False,
    split: str = "valid",
    degradation: str = "bicubic",
    cache_lr: bool = True,
) -> Dataset:
    """Resolve and check a dataset; ``data=None`` (and no ``hr``) is the built-in sample set.

    The checks of :func:`check_dataset` (headers only) run before returning, so no model ever
    runs on inconsistent data: any problem raises one :class:`SrbenchError` that counts them
    all and names the first few.
    """
    dataset = resolve_dataset(
        data,
        scale=scale,
        layout=layout,
        hr=hr,
        lr=lr,
        allow_16bit=allow_16bit,
        split=split,
        degradation=degradation,
        cache_lr=cache_lr,
    )
    problems = dataset.check()
    # An HR too small for SSIM is reported by 'data check' and warned about here, not refused:
    # the run names it in the error row of each model and keeps the images measured before.
    small = [p for p in problems if p.kind == "too-small-for-ssim"]
    problems = [p for p in problems if p.kind != "too-small-for-ssim"]
    for problem in small:
        warnings.warn(problem.message, DatasetWarning, stacklevel=2)
    if problems:
        where = str(data if data is not None else hr)
        raise SrbenchError(summarize_problems(where, problems, _check_command(data, hr, lr, scale, layout)))
    return dataset


__all__ = [
    "DEGRADATIONS",
    "LAYOUTS",
    "SAMPLE_IMAGES",
    "SPLITS",
    "Dataset",
    "ImagePair",
    "PairSource",
    "Problem",
    "check_dataset",
    "load_dataset",
    "prefetch",
    "resolve_dataset",
    "summarize_problems",
]
