"""Reading and writing images the way SR benchmarks do: uint8, HxWx3, RGB.

Conventions (every function here follows them):

* Arrays are numpy ``uint8`` shaped ``(H, W, 3)`` in RGB order, values 0..255.
* Sizes in messages are written ``WIDTHxHEIGHT`` (Pillow's order); array shapes are (H, W, C).
* Formats: whatever Pillow decodes; srbench lists PNG, JPEG, BMP, TIFF and WebP
  (:data:`IMAGE_SUFFIXES`) when it scans folders.
* Greyscale (``L``, ``1``, ``P`` without alpha, ...) is expanded to three equal channels.
* An alpha channel is dropped (not composited) and an :class:`ImageWarning` is issued through
  :func:`warnings.warn`, once per file; SR benchmarks evaluate colour only.
* 16-bit images are refused with :class:`SrbenchError` unless ``allow_16bit=True``; then each
  sample ``v`` becomes its high byte ``v >> 8``. That is also what Pillow itself does when it
  opens a 16-bit RGB PNG, so 16-bit greyscale and 16-bit colour files convert identically.
  (The NTIRE harness has no bit-depth check at all and would misread such files.)
* Decoding never depends on Pillow's process-wide settings that user code may change (a
  training repository's ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` would turn a truncated
  file into a half-grey image; ``Image.MAX_IMAGE_PIXELS = None`` would switch off the
  decompression-bomb guard): every decode runs inside :func:`srbench_pil_settings`, which
  sets srbench's values and puts the user's back afterwards.
* Decompression bombs: a file whose header declares more pixels than Pillow's limit
  (``PIL.Image.MAX_IMAGE_PIXELS`` x 2, about 179 megapixels) is refused with
  :class:`SrbenchError` naming the file and its declared size, before any pixel is decoded
  (Pillow raises ``DecompressionBombError``, which is not an ``OSError``).
* Animated and multi-page files (APNG, animated WebP/GIF, multi-page TIFF) are refused with
  :class:`SrbenchError` naming the file and its frame count: an SR benchmark pair is one
  picture, and reading only the first frame would silently drop the others.
* EXIF orientation is ignored on purpose: every SR benchmark (BasicSR, KAIR, the NTIRE
  harness, MATLAB ``imread``) reads the stored pixel grid, and HR/LR pairs must stay aligned.
"""

from __future__ import annotations

import contextlib
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from srbench.core.errors import SrbenchError, cause
from srbench.core.files import atomic_open

#: File suffixes srbench treats as images when it scans a folder (lower case).
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

# Pillow modes whose samples are wider than 8 bits.
_WIDE_MODES_16 = ("I;16", "I;16B", "I;16L", "I;16N")
_WIDE_MODES_32 = ("I", "F")


#: Pillow's own limit (pixels) above which it refuses an image as a decompression bomb; srbench
#: keeps it whatever the process set (Pillow's default: 2**30 / 4 / 3 = 89,478,485 pixels).
MAX_IMAGE_PIXELS: int = 1024 * 1024 * 1024 // 4 // 3

# Pillow's settings are module globals: decodes in several threads share one saved copy of the
# user's values, set on the first entry and put back on the last exit.
_PIL_LOCK = threading.Lock()
_pil_depth = 0
_pil_saved: tuple[bool, int | None] = (False, None)


@contextlib.contextmanager
def srbench_pil_settings() -> Iterator[None]:
    """Decode with srbench's Pillow settings, whatever user code set process-wide.

    Inside the block ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` is False (a truncated file is an
    error, never padded with grey) and ``PIL.Image.MAX_IMAGE_PIXELS`` is
    :data:`MAX_IMAGE_PIXELS`, or the user's limit when that is stricter; when the last such
    block (of any thread) exits, both get back the values they had before the first one
    entered, so the user's code keeps its own choice for its own reads. Re-entrant;
    concurrent decodes are not serialised.
    """
    global _pil_depth, _pil_saved
    with _PIL_LOCK:
        if _pil_depth == 0:
            _pil_saved = (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS)
        _pil_depth += 1
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        # A stricter limit the user set is kept; a looser one (or None: no guard) is not.
        user_limit = _pil_saved[1]
        Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS if user_limit is None else min(user_limit, MAX_IMAGE_PIXELS)
    try:
        yield
    finally:
        with _PIL_LOCK:
            _pil_depth -= 1
            if _pil_depth == 0:
                ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = _pil_saved


class ImageWarning(UserWarning):
    """An image was read with a lossy but harmless conversion (e.g. its alpha was dropped)."""


@dataclass(frozen=True)
class ImageInfo:
    """What an image header says, without decoding the pixels.

    ``width``/``height`` in pixels; ``mode`` is Pillow's mode; ``bits`` the bits per sample
    (8, 16 or 32); ``has_alpha`` whether an alpha channel (or palette transparency) exists.
    """

    path: Path
    width: int
    height: int
    mode: str
    bits: int
    has_alpha: bool
    #: Frames (pages) the file holds; 1 for a still image.
    frames: int = 1

    @property
    def size_text(self) -> str:
        """``"WIDTHxHEIGHT"``."""
        return f"{self.width}x{self.height}"


def is_image_file(path: Path) -> bool:
    """True for a visible regular file whose suffix is in :data:`IMAGE_SUFFIXES`."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".") and path.is_file()


def _bits_of(img: Image.Image) -> int:
    """Bits per sample from the mode and, for formats that narrow on load, the raw mode."""
    if img.mode in _WIDE_MODES_16:
        return 16
    if img.mode in _WIDE_MODES_32:
        return 32
    # Pillow opens 16-bit RGB(A)/LA PNGs in 8-bit modes and narrows while decoding; the tile's
    # raw mode ("RGB;16B", ...) still tells the stored depth.
    for tile in getattr(img, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return 16
    bps = getattr(img, "tag_v2", {}).get(258) if img.format == "TIFF" else None
    if bps is not None:
        values = bps if isinstance(bps, tuple) else (bps,)
        if max(int(v) for v in values) > 8:
            return 16
    return 8


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)


def probe_image(path: Path) -> ImageInfo:
    """Read only the header of ``path``; raises :class:`SrbenchError` if it is not an image."""
    path = Path(path)
    with open_image(path) as img:
        return ImageInfo(
            path=path,
            width=int(img.width),
            height=int(img.height),
            mode=img.mode,
            bits=_bits_of(img),
            has_alpha=_has_alpha(img),
            frames=frame_count(img),
        )


def frame_count(img: Image.Image) -> int:
    """Frames (pages) in an opened image: ``n_frames`` where the format has it, else 1.

    A JPEG with multi-picture data (Pillow's ``MPO``: camera photos carrying a preview or
    depth map) counts as one picture: its first frame is the photograph.
    """
    if img.format == "MPO":
        return 1
    try:
        return max(1, int(getattr(img, "n_frames", 1) or 1))
    except (OSError, ValueError, SyntaxError, EOFError):
        return 1  # a damaged later frame: the decode of frame 0 reports what matters


def _bomb_message(path: Path, exc: BaseException) -> str:
    """One line for Pillow's ``DecompressionBombError``: the file, its declared pixels, the limit."""
    found = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(exc))
    size = "it declares more pixels than the"
    if found:
        pixels, limit = (int(found.group(k)) / 1e6 for k in (1, 2))
        size = f"it declares {pixels:.0f} megapixels, more than the {limit:.0f} MP"
    return (
        f"cannot read image {path}: {size} Pillow decodes safely (a decompression bomb, or a huge "
        "image); srbench did not decode it: crop or downscale it, or remove it"
    )


@contextmanager
def open_image(path: Path) -> Iterator[Image.Image]:
    """``PIL.Image.open(path)`` whose failures are one-line :class:`SrbenchError` naming ``path``.

    Missing file, not an image, truncated data, a decompression bomb (declared size over
    Pillow's limit; refused before decoding) all raise :class:`SrbenchError`; errors raised
    inside the ``with`` block while decoding are mapped the same way.
    """
    path = Path(path)
    try:
        with srbench_pil_settings(), Image.open(path) as img:
            yield img
    except SrbenchError:
        raise
    except Image.DecompressionBombError as exc:
        raise SrbenchError(_bomb_message(path, exc)) from None
    except FileNotFoundError:
        raise SrbenchError(f"image {path} does not exist; check the path") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise SrbenchError(f"cannot read image {path}: {_reason(exc)}; replace or remove the file") from None


#: How far from the end the PNG IEND chunk or JPEG end-of-image marker may sit (tools append trailers).
_TAIL = 1 << 16


def truncation(path: Path) -> str | None:
    """Why ``path`` looks cut short, from its last bytes only; None when it looks complete.

    PNG: the IEND chunk must be in the last 64 KiB (at the very end, but tools that append
    bytes after it make files decoders still read). JPEG: the end-of-image marker
    ``FF D9`` must appear in its last 64 KiB (some cameras write data after it). Other formats
    are not checked here (None). Cheap: one seek and one read, no decoding; a file cut inside
    its pixel data fails this check, which is what a half-downloaded file looks like.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            fh.seek(max(0, size - _TAIL))
            tail = fh.read()
    except OSError:
        return None  # the header probe reports unreadable files
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        # Anywhere in the tail: some tools append bytes after IEND, which decoders ignore.
        if b"IEND\xaeB`\x82" not in tail:
            return "truncated PNG: the file has no IEND chunk at its end"
    elif head.startswith(b"\xff\xd8"):
        # Skip the start-of-image marker when the whole file is in ``tail``.
        body = tail[2:] if size <= _TAIL else tail
        if b"\xff\xd9" not in body:
            return "truncated JPEG: no end-of-image marker"
    return None


def check_single_frame(path: Path, frames: int) -> None:
    """Raise :class:`SrbenchError` when ``path`` holds several frames (see the module conventions)."""
    if frames > 1:
        raise SrbenchError(
            f"image {path} holds {frames} frames (animated or multi-page); srbench reads single "
            "images and would keep only the first: extract the frames to separate PNG files first"
        )


def _reason(exc: BaseException) -> str:
    return cause(exc)  # first line, cut between words


def read_image(path: Path, *, allow_16bit: bool = False) -> np.ndarray:
    """Decode ``path`` into a uint8 ``(H, W, 3)`` RGB array (see the module conventions).

    Raises :class:`SrbenchError` naming the file when it is missing, unreadable or
    truncated, a decompression bomb, animated/multi-page, 16-bit without ``allow_16bit``, or
    32-bit/float.
    """
    path = Path(path)
    with open_image(path) as img:
        check_single_frame(path, frame_count(img))
        bits = _bits_of(img)
        if bits == 32:
            raise SrbenchError(
                f"image {path} has 32-bit samples (mode {img.mode}); "
                "srbench reads 8-bit images only: convert it to 8-bit PNG"
            )
        if bits == 16 and not allow_16bit:
            raise SrbenchError(
                f"image {path} is 16-bit; srbench reads 8-bit images only: convert it to 8-bit "
                "or pass --allow-16bit to keep the high byte (v >> 8)"
            )
        if _has_alpha(img):
            warnings.warn(
                f"{path}: alpha channel dropped (srbench evaluates RGB only)", ImageWarning, stacklevel=2
            )
        img.load()
        return _to_rgb8(img)


def _to_rgb8(img: Image.Image) -> np.ndarray:
    """Convert a loaded Pillow image to uint8 RGB, dropping alpha, narrowing 16-bit to v >> 8."""
    if img.mode in _WIDE_MODES_16:
        grey = np.asarray(img).astype(np.uint16, copy=False)
        grey8 = (grey >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey8[:, :, None], 3, axis=2))
    if img.mode == "RGB":
        rgb = img
    elif img.mode in ("L", "1"):
        rgb = img.convert("L").convert("RGB")
    else:
        # P, PA, LA, RGBA, CMYK, YCbCr, ...: Pillow's converters drop alpha without compositing.
        rgb = img.convert("RGBA").convert("RGB") if "A" in img.mode or img.mode == "P" else img.convert("RGB")
    arr = np.asarray(rgb, dtype=np.uint8)
    return np.ascontiguousarray(arr)


def write_png_atomic(path: Path, img: np.ndarray, *, icc_profile: bytes | None = None) -> Path:
    """Write uint8 ``img`` as a PNG at ``path``, atomically; returns ``path``.

    ``img`` is HxW (L), HxWx2 (LA), HxWx3 (RGB) or HxWx4 (RGBA). The PNG goes through
    :func:`srbench.core.files.atomic_open` (temporary file in the same folder, then ``os.replace``;
    mode 0o666 minus the umask), so readers never see a half-written file. Missing parent
    folders are created. ``icc_profile`` (bytes) is embedded as the PNG's iCCP chunk.
    """
    path = Path(path)
    arr = np.asarray(img)
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        raise ValueError(
            f"write_png_atomic: expected uint8 HxW or HxWxC (C 2-4), got {arr.dtype} {arr.shape}"
        )
    with atomic_open(path, mkdir=True) as handle:
        extra = {"icc_profile": icc_profile} if icc_profile else {}
        Image.fromarray(np.ascontiguousarray(arr)).save(handle, format="PNG", **extra)
    return path
