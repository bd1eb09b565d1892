"""Visual comparison grids of a run's SR outputs: the engine behind ``srbench compare``.

A grid is one row of panels cut from the same HR-pixel window of one test image: the HR
reference, bicubic (MATLAB ``imresize`` of the LR, i.e. the usual quality floor) and each
model's saved SR (``RUN/images/<model>/<image>.png``, written by ``srbench run --save-images``).

Layout (all sizes in pixels): each panel is the crop enlarged ``zoom`` times with
nearest-neighbour sampling (so SR pixels stay visible), panels are separated by :data:`GAP`
white columns, and a :data:`LABEL_HEIGHT` band under each panel names it and gives the
image's full-image PSNR-Y (dB; from results.json, computed with
:func:`~srbench.measure.metrics.image_quality` for bicubic). Grid size:
``(n*w*zoom + (n-1)*GAP, h*zoom + LABEL_HEIGHT)`` for ``n`` panels and a ``w``x``h`` crop.

Automatic crop (:func:`auto_crop`): over ``size``x``size`` HR windows on a ``stride`` grid
(the ``scale``-pixel border excluded, as in the metrics), the local PSNR on BT.601 Y of each
compared method against HR, and the window with the largest spread (max - min, dB) wins.
Compared methods: the models when there are at least two, else the model and bicubic. The
local MSE is floored at :data:`MSE_FLOOR` (grey levels²) so that nearly flat areas, where tiny
errors give large but invisible PSNR differences, do not win.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from srbench.core.errors import SrbenchError
from srbench.data.datasets import dataset_options, load_dataset
from srbench.data.imageio import read_image, write_png_atomic
from srbench.data.imresize import imresize_uint8
from srbench.measure.metrics import image_quality, rgb_to_y
from srbench.results.schema import STATUS_OK, RunResult, load_results

#: Default automatic crop: a 96x96 HR window searched on a 16-pixel grid.
DEFAULT_CROP_SIZE = 96
DEFAULT_STRIDE = 16
#: Local MSE floor for :func:`auto_crop`, in squared grey levels (0-255 scale).
MSE_FLOOR = 1.0
#: The default zoom makes a panel about this many pixels on its long side.
PANEL_TARGET = 288
#: White columns between panels, and the label band under them (pixels).
GAP = 4
LABEL_HEIGHT = 36
_FONT_SIZE = 13


@dataclass(frozen=True)
class Crop:
    """A window in HR pixel coordinates: top-left ``(x, y)``, width ``w``, height ``h``."""

    x: int
    y: int
    w: int
    h: int

    def cut(self, img: np.ndarray) -> np.ndarray:
        """The window of an (H, W, ...) array."""
        return img[self.y : self.y + self.h, self.x : self.x + self.w]

    def __str__(self) -> str:
        return f"{self.x},{self.y},{self.w},{self.h}"


@dataclass(frozen=True)
class Panel:
    """One grid panel: ``label`` (method name), full-image ``psnr_y`` (dB, None for HR or
    when unmeasured) and the full HR-size uint8 (H, W, 3) RGB image."""

    label: str
    psnr_y: float | None
    image: np.ndarray


@dataclass
class Comparison:
    """Everything a grid shows for one image of one run.

    ``panels`` are HR, bicubic, then the models in results.json order, each method once;
    ``skipped`` names the run's models that have no saved SR of this image (e.g. they failed);
    ``left_out`` the models whose output is not a result (no trained weights: status
    ``no-weights``, or ``error``), which are never shown nor compared by ``--auto-crop``.
    """

    image_name: str
    scale: int
    panels: list[Panel]
    skipped: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)

    @property
    def hr(self) -> np.ndarray:
        """The HR reference (uint8 (H, W, 3))."""
        return self.panels[0].image

    @property
    def models(self) -> list[Panel]:
        """The model panels (everything after HR and bicubic)."""
        return self.panels[2:]


def parse_crop(text: str, hr_shape: tuple[int, ...]) -> Crop:
    """``--crop x,y,w,h`` (HR pixels) checked against the HR ``(H, W, ...)`` shape."""
    h_img, w_img = hr_shape[0], hr_shape[1]
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise SrbenchError(
            f"--crop {text!r} is not x,y,w,h in HR pixels (e.g. --crop 120,80,96,96)"
        ) from None
    if x < 0 or y < 0 or w < 1 or h < 1 or x + w > w_img or y + h > h_img:
        raise SrbenchError(
            f"--crop {text} does not fit the {w_img}x{h_img} HR image; "
            "give x,y >= 0 and w,h >= 1 with x+w <= width and y+h <= height"
        )
    return Crop(x, y, w, h)


def _luma(img: np.ndarray) -> np.ndarray:
    # torch.tensor copies: decoded images may be read-only numpy views.
    return rgb_to_y(torch.tensor(img).permute(2, 0, 1)).numpy()


def _axis_starts(length: int, size: int, stride: int, border: int) -> np.ndarray:
    lo, hi = border, length - border - size
    if hi < lo:  # the image is too small for the border: centre the window instead
        return np.array([max(0, (length - size) // 2)])
    starts = np.arange(lo, hi + 1, stride)
    if starts[-1] != hi:
        starts = np.append(starts, hi)  # also reach the bottom/right edge
    return starts


def local_psnr(
    hr: np.ndarray, others: list[np.ndarray], *, size: int, stride: int, border: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Window PSNR-Y of each image in ``others`` against ``hr`` over a grid of windows.

    Returns ``(ys, xs, psnr)``: window top-left rows (ny,), columns (nx,) and PSNR in dB
    shaped (len(others), ny, nx), with the MSE floored at :data:`MSE_FLOOR`. ``size`` is
    clipped to the image. Vectorised with one summed-area table per image.
    """
    h, w = hr.shape[:2]
    sh, sw = min(size, h), min(size, w)
    ys = _axis_starts(h, sh, stride, border)
    xs = _axis_starts(w, sw, stride, border)
    y_hr = _luma(hr)
    out = np.empty((len(others), len(ys), len(xs)))
    for k, img in enumerate(others):
        err = (_luma(img) - y_hr) ** 2
        sat = np.zeros((h + 1, w + 1))
        sat[1:, 1:] = err.cumsum(0).cumsum(1)
        y0, x0 = ys[:, None], xs[None, :]
        sums = sat[y0 + sh, x0 + sw] - sat[y0, x0 + sw] - sat[y0 + sh, x0] + sat[y0, x0]
        mse = np.maximum(sums / (sh * sw), MSE_FLOOR)
        out[k] = 10.0 * np.log10(255.0**2 / mse)
    return ys, xs, out


def auto_crop(
    hr: np.ndarray,
    others: list[np.ndarray],
    *,
    size: int = DEFAULT_CROP_SIZE,
    stride: int = DEFAULT_STRIDE,
    border: int = 0,
) -> Crop:
    """The window where the local PSNR-Y of ``others`` differs most (see the module docstring).

    Ties go to the first window in row-major order. Needs at least two images in ``others``.
    """
    if len(others) < 2:
        raise ValueError("auto_crop needs at least two images to compare")
    ys, xs, psnr = local_psnr(hr, others, size=size, stride=stride, border=border)
    spread = psnr.max(axis=0) - psnr.min(axis=0)
    iy, ix = np.unravel_index(int(np.argmax(spread)), spread.shape)
    return Crop(int(xs[ix]), int(ys[iy]), min(size, hr.shape[1]), min(size, hr.shape[0]))


def crop_candidates(comparison: Comparison) -> list[np.ndarray]:
    """The images :func:`auto_crop` compares: the models if two or more, else with bicubic."""
    models = [p.image for p in comparison.models]
    return models if len(models) >= 2 else [comparison.panels[1].image, *models]


# --------------------------------------------------------------------------- loading


def load_comparison(run_dir: Path, image_name: str) -> Comparison:
    """Read a run's results.json, the HR/LR of ``image_name`` and every model's saved SR.

    Raises :class:`SrbenchError` when the image is not in the run's dataset, or when no
    model has a saved SR of it (the run was not made with ``--save-images``).
    """
    run_dir = Path(run_dir)
    run: RunResult = load_results(run_dir)
    images_dir = run_dir / "images"
    if not images_dir.is_dir():
        raise SrbenchError(
            f"run {run_dir} has no saved images (no {images_dir}); rerun 'srbench run' with --save-images"
        )
    cfg = run.config
    scale = int(cfg.get("scale", 4))
    try:
        dataset = load_dataset(cfg.get("data"), scale=scale, layout=cfg.get("layout"), **dataset_options(cfg))
    except SrbenchError as exc:
        # The dataset options are the run's ('srbench run --data ...'), not compare's.
        raise SrbenchError(
            f"cannot re-read the dataset of run {run_dir} (as 'srbench run' was given it: "
            f"--data {cfg.get('data') or 'sample'}): {exc}"
        ) from None
    names = dataset.names()
    if image_name not in names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise SrbenchError(f"image {image_name!r} is not in run {run_dir}'s dataset; its images: {shown}")
    pair = dataset.load(image_name)
    hr = pair.hr
    bicubic = np.asarray(imresize_uint8(np.array(pair.lr), scale))
    quality = image_quality(
        torch.tensor(bicubic).permute(2, 0, 1),
        torch.tensor(hr).permute(2, 0, 1),
        crop_border=scale,
    )
    panels = [Panel("HR", None, hr), Panel("bicubic", quality.psnr_y, bicubic)]
    skipped: list[str] = []
    left_out: list[str] = []
    bicubic_row = False
    for model in run.models:
        if model.arch == "bicubic":
            bicubic_row = True
            continue  # the bicubic panel is already there: each method appears once
        if model.status != STATUS_OK:
            # Random-init output (no-weights) or a failed model: never shown as a result.
            left_out.append(model.name)
            continue
        path = images_dir / model.name / f"{image_name}.png"
        if not path.is_file():
            skipped.append(model.name)
            continue
        sr = read_image(path)
        if sr.shape != hr.shape:
            raise SrbenchError(
                f"{path} is {sr.shape[1]}x{sr.shape[0]} but the HR of {image_name} is "
                f"{hr.shape[1]}x{hr.shape[0]}; it is not from this run's data: "
                "rerun 'srbench run' with --save-images"
            )
        psnr_y = next((i.psnr_y for i in model.images if i.name == image_name), None)
        panels.append(Panel(model.name, psnr_y, sr))
    if len(panels) == 2 and not bicubic_row:
        if left_out and not skipped:
            raise SrbenchError(
                f"run {run_dir} has no model with trained weights to compare ({', '.join(left_out)} "
                "ran without them); give them weights (see each row's reason) and rerun 'srbench run'"
            )
        raise SrbenchError(
            f"run {run_dir} has no saved SR of {image_name!r} under {images_dir}/<model>/; "
            "rerun 'srbench run' with --save-images"
        )
    return Comparison(image_name=image_name, scale=scale, panels=panels, skipped=skipped, left_out=left_out)


# --------------------------------------------------------------------------- drawing


def default_zoom(crop: Crop) -> int:
    """The integer zoom that makes a panel about :data:`PANEL_TARGET` pixels wide (>= 1)."""
    return max(1, PANEL_TARGET // max(crop.w, crop.h))


def grid_size(n_panels: int, crop: Crop, zoom: int) -> tuple[int, int]:
    """``(width, height)`` of the grid image in pixels (see the module docstring)."""
    return n_panels * crop.w * zoom + (n_panels - 1) * GAP, crop.h * zoom + LABEL_HEIGHT


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=_FONT_SIZE)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _label_lines(panel: Panel) -> tuple[str, str]:
    if panel.label == "HR":
        return "HR", "reference"
    if panel.psnr_y is None:
        return panel.label, "PSNR-Y n/a"
    if math.isinf(panel.psnr_y):
        return panel.label, "PSNR-Y inf"
    return panel.label, f"PSNR-Y {panel.psnr_y:.2f} dB"


def render_grid(panels: list[Panel], crop: Crop, *, zoom: int) -> Image.Image:
    """One RGB image: each panel's crop enlarged ``zoom``x, labelled underneath."""
    if zoom < 1:
        raise SrbenchError(f"--zoom {zoom} must be a positive integer")
    width, height = grid_size(len(panels), crop, zoom)
    grid = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(grid)
    font = _font()
    pw, ph = crop.w * zoom, crop.h * zoom
    for i, panel in enumerate(panels):
        x0 = i * (pw + GAP)
        tile = Image.fromarray(np.ascontiguousarray(crop.cut(panel.image)))
        grid.paste(tile.resize((pw, ph), Image.Resampling.NEAREST), (x0, 0))
        name, value = _label_lines(panel)
        draw.text((x0 + 4, ph + 3), name, fill="black", font=font)
        draw.text((x0 + 4, ph + 3 + LABEL_HEIGHT // 2), value, fill=(60, 60, 60), font=font)
    return grid


def write_grid(path: Path, grid: Image.Image) -> Path:
    """Save the grid as PNG at ``path`` (atomically)."""
    return write_png_atomic(Path(path), np.asarray(grid.convert("RGB")))
