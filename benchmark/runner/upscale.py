"""Upscaling image files with a model: the engine behind ``srbench upscale``.

Conventions:

* Output files are PNG named ``<stem>_x<scale>_<model>.png``, beside the input by default.
* The network always sees RGB. The conversion to and from the network's value range is the
  benchmark's own (:meth:`srbench.backends.pytorch.TorchBackend.to_input`, then ``out / input_range`` and
  :func:`srbench.measure.metrics.to_uint8`), so an upscaled file is bit-identical to the SR
  image ``srbench run --save-images`` writes for the same LR.
* Alpha: the alpha channel never goes through the network (SR models are trained on colour);
  it is upscaled on its own with MATLAB bicubic (:func:`~srbench.data.imresize.imresize_uint8`)
  and re-attached. RGBA/PA/palette-with-transparency in → RGBA out; LA in → LA out.
* Greyscale (``L``/``1``/``LA``) is repeated to three equal channels, upscaled, and turned back
  into one channel with full-range ITU-R BT.601 luma, ``0.299 R + 0.587 G + 0.114 B`` on the
  float output before quantisation (the weights Pillow's ``convert("L")`` uses). For a grey
  input the model's three output channels differ only by its colour bias; luma keeps the grey
  level a viewer would see in the RGB output, where taking one channel would keep that bias.
* Input policy (``upscale`` is a user tool: the output must display the way the input does;
  the datasets of ``run`` follow the benchmark conventions of :mod:`srbench.data.imageio`
  instead):

  - orientation: the EXIF orientation tag is applied (the pixels are rotated/flipped as a
    viewer shows them) and the output PNG is upright with no tag;
  - colour profile: pixel values go through the network unconverted and the input's ICC
    profile is written into the output PNG, so both display with the same colours;
  - alpha: kept (upscaled apart, see above); greyscale stays greyscale;
  - bit depth: 8-bit; 16-bit is refused unless ``--allow-16bit``, which upscales the high byte
    ``v >> 8`` (the 8-bit copy, exactly; alpha and greyness kept as for 8-bit files); the
    output is 8-bit;
  - frames: animated and multi-page files (APNG, animated WebP/GIF, multi-page TIFF) are
    refused with one line naming the file and its frame count: upscaling only the first frame
    would drop the others silently, and a PNG output holds one picture (extract the frames);
  - size: a file declaring more pixels than Pillow's decompression-bomb limit is refused before
    decoding (:func:`srbench.data.imageio.open_image`).
* Tiling: untiled unless ``tile`` is set or the output is estimated not to fit in the memory
  available (:func:`srbench.backends.pytorch.memory_tiling`: tiles of ``AUTO_TILE``; an image whose output
  cannot fit even tiled is refused before the model runs, naming the image's size, never the
  model); an out-of-memory error falls back to tiling with halving tiles (the protocol's
  :func:`~srbench.backends.pytorch.timed_forward`, shared).
  See :mod:`srbench.backends.tiling` for the seam tolerance.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from srbench.backends.devices import DTYPES, check_dtype, resolve_device
from srbench.backends.pytorch import Tiling, TorchBackend, memory_tiling, timed_forward, to_unit_range
from srbench.backends.tiling import DEFAULT_OVERLAP
from srbench.core.errors import SrbenchError
from srbench.data.imageio import (
    IMAGE_SUFFIXES,
    _to_rgb8,
    check_single_frame,
    is_image_file,
    open_image,
    probe_image,
    write_png_atomic,
)
from srbench.data.imresize import imresize_uint8
from srbench.measure.metrics import to_uint8
from srbench.measure.timing import ForwardTimer
from srbench.models.specs import ModelSpec, parse_model_specs
from srbench.runner.building import build_model
from srbench.runner.failures import model_call

#: Full-range BT.601 luma weights (R, G, B) used to turn a grey input's RGB output back to grey.
GREY_WEIGHTS: tuple[float, float, float] = (0.299, 0.587, 0.114)

# Pillow modes read as grey (with or without alpha); everything else is read as RGB(A).
_GREY_MODES = ("L", "1", "LA", "La")
_EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_WIDE_MODES_16 = ("I;16", "I;16B", "I;16L", "I;16N")


@dataclass(frozen=True)
class SourceImage:
    """A decoded input: ``rgb`` uint8 (H, W, 3); ``alpha`` uint8 (H, W) or None; ``grey``
    True when the file was single-channel (its three RGB channels are then equal)."""

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    grey: bool = False
    #: The input's ICC profile (bytes), written into the output PNG unchanged.
    icc_profile: bytes | None = None
    #: The EXIF orientation (1-8) that was applied to the pixels; 1 = stored upright.
    orientation: int = 1


@dataclass(frozen=True)
class UpscaleResult:
    """One upscaled file: sizes as ``(width, height)`` pixels; ``forward_ms`` the network's
    time (ms; tiles included, alpha and file I/O excluded); ``total_s`` the whole file (s)."""

    input: Path
    output: Path
    size_in: tuple[int, int]
    size_out: tuple[int, int]
    forward_ms: float
    total_s: float
    tiled: bool


@dataclass
class Upscaler:
    """A model ready to upscale uint8 images on one device.

    ``model`` takes (1, 3, h, w) on its ``input_range`` scale and returns (1, 3, h*scale,
    w*scale) on the same scale. ``tile``/``tile_overlap`` are LR pixels (``tile=None``:
    untiled unless out of memory). No weights check happens here: :func:`load_upscaler`
    refuses untrained models; tests build an :class:`Upscaler` directly from any module.
    """

    name: str
    model: nn.Module
    input_range: float
    scale: int
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    dtype: str = "fp32"
    tile: int | None = None
    tile_overlap: int = DEFAULT_OVERLAP

    def __post_init__(self) -> None:
        if self.tile is not None and self.tile <= self.tile_overlap:
            raise SrbenchError(f"--tile {self.tile} must be larger than --tile-overlap {self.tile_overlap}")
        self.device = torch.device(self.device)
        self._backend = TorchBackend.prepare(
            self.model, input_range=self.input_range, device=self.device, dtype=DTYPES[self.dtype]
        )
        self.model = self._backend.module
        self._tiling = Tiling(scale=self.scale, tile=self.tile, overlap=self.tile_overlap)
        self._timer = ForwardTimer(self.device)

    def memory_plan(self, height: int, width: int, *, name: str = "image") -> Tiling:
        """The tiling for an ``height``×``width`` input, chosen from its output's size
        (:func:`~srbench.backends.pytorch.memory_tiling`; ``tile`` set: always that)."""
        return memory_tiling(self._tiling, height, width, self.device, name=name)

    def upscale_rgb(self, rgb: np.ndarray, *, name: str = "image") -> tuple[torch.Tensor, float, bool]:
        """Upscale uint8 (H, W, 3) RGB; returns ``(sr, forward_ms, tiled)``.

        ``sr`` is float32 (3, H*scale, W*scale) on [0, 1] (not yet clamped) on the device.
        Tiled when ``tile`` is set, when :meth:`memory_plan` says the output would not fit
        untiled, or after an out-of-memory error.
        """
        size = (rgb.shape[1], rgb.shape[0])
        tiling = self.memory_plan(rgb.shape[0], rgb.shape[1], name=name)
        with torch.inference_mode(), model_call(self.name, f"image {name}", size=size, probe=self._probe):
            x = self._backend.to_input(np.ascontiguousarray(rgb))
            out, ms, tiled = timed_forward(self._backend.forward, x, self._timer, tiling)
            sr = to_unit_range(out, x, self.scale, name, self.input_range)
        return sr, ms, tiled

    def _probe(self, side: int) -> torch.Tensor:
        """One forward of a black ``side``×``side`` image (for the smallest-input search)."""
        return self._backend.forward(self._backend.to_input(np.zeros((side, side, 3), np.uint8)))

    def upscale(self, src: SourceImage, *, name: str = "image") -> tuple[np.ndarray, float, bool]:
        """Upscale a decoded image; returns ``(array, forward_ms, tiled)``.

        The array is uint8 (H', W') grey, (H', W', 2) grey+alpha, (H', W', 3) RGB or
        (H', W', 4) RGBA, following ``src`` (see the module conventions).
        """
        sr, ms, tiled = self.upscale_rgb(src.rgb, name=name)
        if src.grey:
            w = torch.tensor(GREY_WEIGHTS, dtype=sr.dtype, device=sr.device)
            luma = (sr * w[:, None, None]).sum(dim=0, keepdim=True)
            # Same clamp/round-half-even quantisation as every RGB output (metrics.to_uint8).
            planes = [to_uint8(luma.expand(3, -1, -1))[0].cpu().numpy()]
        else:
            planes = list(to_uint8(sr).cpu().numpy())
        if src.alpha is not None:
            planes.append(np.asarray(imresize_uint8(src.alpha, self.scale)))
        out = planes[0] if len(planes) == 1 else np.stack(planes, axis=-1)
        return np.ascontiguousarray(out), ms, tiled


def resolve_spec(
    model: str,
    weights: dict[str, str] | None = None,
    *,
    model_args: dict[str, dict] | None = None,
    input_ranges: dict[str, float] | None = None,
    scale: int | None = None,
    weights_keys: dict[str, str] | None = None,
) -> ModelSpec:
    """The one :class:`ModelSpec` that ``--model`` names (as one ``--models`` token)."""
    specs = parse_model_specs(
        model,
        weights,
        model_args=model_args,
        input_ranges=input_ranges,
        scale=scale,
        option="--model",
        weights_keys=weights_keys,
    )
    if len(specs) != 1:
        raise SrbenchError(f"--model {model!r} names {len(specs)} models; upscale with one model at a time")
    return specs[0]


def load_upscaler(
    model: str | ModelSpec,
    *,
    scale: int = 4,
    device: str = "auto",
    dtype: str = "fp32",
    tile: int | None = None,
    tile_overlap: int = DEFAULT_OVERLAP,
    weights: dict[str, str] | None = None,
    offline: bool = False,
) -> Upscaler:
    """Build ``model`` (a spec, or a registry name / checkpoint path as ``--models`` takes).

    Weights are resolved as in ``srbench run`` (``--weights``, ``SRBENCH_WEIGHTS_DIR``, the
    cache, then a download unless ``offline``). A model with parameters but no weights is
    refused: random weights upscale to noise. Parameter-free models (``bicubic``) need none.
    """
    spec = model if isinstance(model, ModelSpec) else resolve_spec(model, weights)
    torch_device = resolve_device(device)
    check_dtype(dtype, torch_device)
    entry, loaded = build_model(spec, scale=scale, offline=offline)
    has_params = any(p.numel() > 0 for p in loaded.model.parameters())
    if loaded.weights is None and has_params:
        if not entry.has_trained_weights:
            raise SrbenchError(
                f"model '{spec.name}' has no trained weights anywhere; upscaling with random weights "
                "is meaningless: choose a model with weights (see 'srbench list')"
            )
        raise SrbenchError(
            f"no x{scale} weights found for model '{spec.name}'; set SRBENCH_WEIGHTS_DIR or pass "
            f"--weights {spec.name}=PATH (upscaling with random weights is meaningless)"
        )
    return Upscaler(
        name=spec.name,
        model=loaded.model,
        input_range=entry.input_range,
        scale=scale,
        device=torch_device,
        dtype=dtype,
        tile=tile,
        tile_overlap=tile_overlap,
    )


# --------------------------------------------------------------------------- files


def read_source(path: Path, *, allow_16bit: bool = False) -> SourceImage:
    """Decode ``path`` as the picture a viewer shows (see "Input policy" in the module docstring).

    EXIF orientation is applied, alpha and greyness are kept, the ICC profile is carried to the
    output, 16-bit samples become their high byte only with ``allow_16bit``.

    Raises :class:`SrbenchError` naming the file when it is unreadable, 32-bit, or 16-bit
    without ``allow_16bit``.
    """
    path = Path(path)
    info = probe_image(path)  # one-line errors for missing/unreadable files and decompression bombs
    check_single_frame(path, info.frames)
    if info.bits == 16 and not allow_16bit:
        raise SrbenchError(
            f"image {path} is 16-bit; srbench upscales 8-bit images: convert it, or pass --allow-16bit "
            "to upscale its high byte (v >> 8)"
        )
    if info.bits not in (8, 16):
        raise SrbenchError(
            f"image {path} has {info.bits}-bit samples; srbench upscales 8-bit images only: convert it first"
        )
    with open_image(path) as img:
        # Pillow opens 16-bit LA PNGs as RGBA (three equal channels); the stored raw mode still
        # says grey. Read it before load(), which empties ``tile``.
        grey16 = info.bits == 16 and _raw_mode(img).startswith("LA")
        img.load()
        if grey16 and img.mode == "RGBA":
            img = img.convert("LA")  # the three channels are equal: nothing is lost
        icc = img.info.get("icc_profile") or None
        orientation = int(img.getexif().get(_EXIF_ORIENTATION, 1) or 1)
        # The stored pixel grid rotated/flipped as the viewer shows it; the output PNG is
        # written upright with no orientation tag, so it displays the same way.
        img = ImageOps.exif_transpose(img) if orientation != 1 else img
        if img.mode in _WIDE_MODES_16:
            # 16-bit grey: narrowed here the way the datasets do (srbench.data.imageio: v >> 8).
            # Pillow narrows 16-bit RGB, RGBA and LA to 8-bit modes itself (also v >> 8), so those
            # take the 8-bit paths below and keep their alpha and greyness.
            img = Image.fromarray(_to_rgb8(img)[..., 0], mode="L")
        mode = img.mode
        if mode == "P":
            img = img.convert("RGBA" if info.has_alpha else "RGB")
            mode = img.mode
        if mode in _GREY_MODES:
            la = np.asarray(img.convert("LA"), dtype=np.uint8)
            grey = la[..., 0]
            rgb = np.repeat(grey[:, :, None], 3, axis=2)
            alpha = la[..., 1].copy() if mode in _ALPHA_MODES else None
            return SourceImage(
                np.ascontiguousarray(rgb), alpha, grey=True, icc_profile=icc, orientation=orientation
            )
        rgba = np.asarray(img.convert("RGBA"), dtype=np.uint8)
    alpha = rgba[..., 3].copy() if mode in _ALPHA_MODES else None
    # A copy (the slice is not contiguous): writable, so torch.from_numpy warns about nothing.
    return SourceImage(
        np.ascontiguousarray(rgba[..., :3]), alpha, grey=False, icc_profile=icc, orientation=orientation
    )


def _raw_mode(img: Image.Image) -> str:
    """The decoder's raw mode of an opened (not yet loaded) image ("" when unknown)."""
    for tile in getattr(img, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        raw = args[0] if isinstance(args, tuple) and args else args
        if isinstance(raw, str):
            return raw
    return ""


def output_name(stem: str, scale: int, model: str) -> str:
    """``<stem>_x<scale>_<model>.png``."""
    return f"{stem}_x{scale}_{model}.png"


def collect_inputs(paths: list[Path], *, scale: int, model: str) -> list[Path]:
    """Image files named by ``paths``: files as given, folders scanned (not recursively).

    Folder scans use :data:`~srbench.data.imageio.IMAGE_SUFFIXES`, in name order, and
    skip this command's own outputs (``*_x<scale>_<model>.png``) so that upscaling a folder
    into itself twice does not upscale the first results.
    """
    suffix = f"_x{scale}_{model}"
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files = sorted(
                (p for p in path.iterdir() if is_image_file(p) and not p.stem.endswith(suffix)),
                key=lambda p: p.name,
            )
            if not files:
                raise SrbenchError(
                    f"folder {path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}); pass image files"
                )
            found.extend(files)
        elif path.is_file():
            found.append(path)
        else:
            raise SrbenchError(f"input {path} does not exist; pass image files or folders")
    return found


def plan_outputs(
    inputs: list[Path],
    *,
    output: Path | None,
    scale: int,
    model: str,
    overwrite: bool,
    single_file: bool,
) -> list[tuple[Path, Path]]:
    """``(input, output)`` pairs, checked before any model runs.

    ``output`` None: beside each input. A path ending in ``.png`` is an output file and is
    accepted only when ``single_file`` (one input image named directly); any other path is a
    folder (created if needed). Two inputs mapping to one output, and existing outputs
    without ``overwrite``, are one-line errors naming the file.
    """
    if output is not None and output.suffix.lower() in IMAGE_SUFFIXES and not output.is_dir():
        if output.suffix.lower() != ".png":
            raise SrbenchError(f"-o {output}: srbench writes PNG only; name the output file .png")
        if not (single_file and len(inputs) == 1):
            raise SrbenchError(f"-o {output} is a file name but several images are upscaled; pass a folder")
        plan = [(inputs[0], output)]
    else:
        if output is not None and output.exists() and not output.is_dir():
            raise SrbenchError(f"-o {output} exists and is not a folder; pass a folder or a new .png name")
        plan = [
            (p, (output if output is not None else p.parent) / output_name(p.stem, scale, model))
            for p in inputs
        ]
    seen: dict[Path, Path] = {}
    for src, dst in plan:
        key = dst.resolve()
        if key in seen:
            raise SrbenchError(
                f"{seen[key]} and {src} would both be written to {dst}; upscale them into different folders"
            )
        seen[key] = src
        if key == src.resolve():
            raise SrbenchError(f"output {dst} is the input itself; choose another -o")
        if dst.exists() and not overwrite:
            raise SrbenchError(f"output {dst} already exists; pass --overwrite to replace it")
    return plan


def upscale_file(upscaler: Upscaler, src: Path, dst: Path, *, allow_16bit: bool = False) -> UpscaleResult:
    """Read ``src``, upscale it with ``upscaler`` and write the PNG ``dst`` (atomically).

    ``size_in`` is the picture as displayed (after EXIF orientation).
    """
    t0 = time.perf_counter()
    image = read_source(src, allow_16bit=allow_16bit)
    h, w = image.rgb.shape[:2]
    out, ms, tiled = upscaler.upscale(image, name=str(src))
    write_png_atomic(dst, out, icc_profile=image.icc_profile)
    return UpscaleResult(
        input=Path(src),
        output=Path(dst),
        size_in=(w, h),
        size_out=(out.shape[1], out.shape[0]),
        forward_ms=ms,
        total_s=time.perf_counter() - t0,
        tiled=tiled,
    )
