"""Precision variants of an fp32 ONNX file: ``--precision fp16`` and ``--precision int8``.

Definitions and the ladder measured on this machine: docs/deployment.md.

* **fp16**: ONNX Runtime's float16 converter (``onnxruntime.transformers.float16``, shipped
  with ``onnxruntime``) with ``keep_io_types``: weights and activations in fp16, the input
  and output stay fp32 (a Cast at each end), so the variant is fed exactly as the fp32 file.
* **int8**: ONNX Runtime's static quantisation (``onnxruntime.quantization.quantize_static``)
  in QDQ format: weights int8 per output channel, activations uint8 per tensor, ranges from
  MinMax calibration on a **calibration set** that shares no image with the evaluated one.

Calibration set (``--calibration PATH``: any dataset ``srbench run --data`` reads, its LR
images at the run's scale). Without it, :data:`DEFAULT_CALIBRATION`: three scikit-image
photographs that are not in srbench's sample set (``immunohistochemistry``,
``hubble_deep_field``, the left view of ``stereo_motorcycle``), each HR centre-cropped to
:data:`CALIBRATION_CROP` pixels and downscaled by srbench's bicubic imresize. Before any
calibration, every calibration image (its HR, mod-cropped to the scale, and its LR) is
hashed and compared with the evaluated images': one shared image is a one-line refusal
(:func:`check_no_overlap`). The row records the set's name, size and sha256 (over its LR
arrays in order).

Each variant is cached under ``<cache>/onnx/variants/``, named by a hash of the fp32 file's
sha256, the precision, the calibration set's sha256 and the tool versions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srbench.core.errors import SrbenchError
from srbench.core.files import atomic_write_bytes
from srbench.data.datasets import load_dataset
from srbench.data.imresize import imresize_uint8, modcrop

#: ``--precision`` values.
PRECISIONS = ("fp32", "fp16", "int8")
#: The calibration set used without ``--calibration``: scikit-image function names.
DEFAULT_CALIBRATION = ("immunohistochemistry", "hubble_deep_field", "stereo_motorcycle")
DEFAULT_CALIBRATION_NAME = "skimage-calibration"
#: Side (HR pixels) of the default set's centre crops: divisible by 2, 3 and 4.
CALIBRATION_CROP = 384
#: How each variant is made, as its row records it.
METHODS = {
    "fp16": "onnxruntime.transformers.float16, keep_io_types",
    "int8": "onnxruntime.quantization.quantize_static QDQ, MinMax; int8 weights per channel, "
    "uint8 activations per tensor",
}
#: Bumped whenever a variant made from the same inputs would differ (cache key).
VARIANT_FORMAT = 1


def _sha(arr: np.ndarray) -> str:
    a = np.ascontiguousarray(arr)
    return hashlib.sha256(f"{a.dtype}|{a.shape}|".encode() + a.tobytes()).hexdigest()


@dataclass(frozen=True)
class CalibrationSet:
    """LR images to calibrate int8 ranges on (uint8 H×W×3 RGB), and what identifies them.

    ``sha256`` covers the LR arrays in order; ``image_hashes`` holds the sha256 of every HR
    (mod-cropped) and LR image, for :func:`check_no_overlap`.
    """

    name: str
    lr: tuple[np.ndarray, ...]
    sha256: str
    image_hashes: frozenset[str]

    def describe(self) -> dict[str, Any]:
        """``{"name", "size", "sha256"}`` for the results row."""
        return {"name": self.name, "size": len(self.lr), "sha256": self.sha256}


def _from_pairs(name: str, pairs: list[tuple[np.ndarray, np.ndarray]]) -> CalibrationSet:
    h = hashlib.sha256()
    hashes: set[str] = set()
    for hr, lr in pairs:
        lr_sha = _sha(lr)
        h.update(lr_sha.encode())
        hashes.update((lr_sha, _sha(hr)))
    return CalibrationSet(name, tuple(lr for _, lr in pairs), h.hexdigest(), frozenset(hashes))


def default_calibration(scale: int) -> CalibrationSet:
    """:data:`DEFAULT_CALIBRATION` at ``scale`` (see the module docstring)."""
    import skimage.data

    pairs, full_hashes = [], set()
    for fn in DEFAULT_CALIBRATION:
        img = getattr(skimage.data, fn)()
        img = np.asarray(img[0] if isinstance(img, tuple) else img, dtype=np.uint8)[..., :3]
        h, w = img.shape[:2]
        side = min(CALIBRATION_CROP, h - h % scale, w - w % scale)
        top, left = (h - side) // 2, (w - side) // 2
        hr = np.ascontiguousarray(img[top : top + side, left : left + side])
        pairs.append((hr, np.asarray(imresize_uint8(hr, 1 / scale))))
        # The whole photograph too: an evaluated set may hold it uncropped.
        full_hashes.add(_sha(np.ascontiguousarray(modcrop(img, scale))))
    out = _from_pairs(DEFAULT_CALIBRATION_NAME, pairs)
    return CalibrationSet(out.name, out.lr, out.sha256, out.image_hashes | full_hashes)


def load_calibration(path: str | None, scale: int) -> CalibrationSet:
    """``--calibration PATH`` (any dataset srbench reads) at ``scale``, or the default set."""
    if path is None:
        return default_calibration(scale)

    dataset = load_dataset(path, scale=scale)
    pairs = [(pair.hr, pair.lr) for pair in dataset]
    if not pairs:
        raise SrbenchError(f"--calibration {path}: no images found; pass a folder of images")
    return _from_pairs(str(getattr(dataset, "name", Path(path).name)), pairs)


def evaluated_hashes(images: Any) -> frozenset[str]:
    """sha256 of every HR and LR array of an :class:`~srbench.data.cache.ImageCache`."""
    out: set[str] = set()
    for _name, lr, hr in images:
        out.update((_sha(lr), _sha(hr)))
    return frozenset(out)


def check_no_overlap(calibration: CalibrationSet, evaluated: frozenset[str], option: str) -> None:
    """Refuse a calibration set that shares an image (identical HR or LR content) with the
    evaluated set: int8 ranges fitted on the measured images flatter its PSNR."""
    shared = calibration.image_hashes & evaluated
    if shared:
        raise SrbenchError(
            f"{option}: the calibration set {calibration.name} shares {len(shared)} image array(s) with "
            "the evaluated set; calibrate on other images (--calibration PATH, or drop it for the "
            f"default {DEFAULT_CALIBRATION_NAME})"
        )


def check_calibration(path: str | None, scale: int, images: Any) -> CalibrationSet:
    """The run's calibration set, refused (one line) when it shares an image with ``images``
    (the evaluated :class:`~srbench.data.cache.ImageCache`); called before any model runs."""
    calibration = load_calibration(path, scale)
    option = f"--calibration {path}" if path else "--precision int8 (default calibration set)"
    check_no_overlap(calibration, evaluated_hashes(images), option)
    return calibration


@dataclass(frozen=True)
class Variant:
    """A precision variant of an fp32 ONNX file (``ModelResult.deployed["precision"]``)."""

    precision: str
    method: str
    base_sha256: str
    base_size_bytes: int
    size_bytes: int
    calibration: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        out = asdict(self)
        out["size_ratio"] = self.size_bytes / self.base_size_bytes if self.base_size_bytes else None
        return out


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime

    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def variant_key(base_sha256: str, precision: str, calibration: CalibrationSet | None) -> str:
    facts = {
        "format": VARIANT_FORMAT,
        "base": base_sha256,
        "precision": precision,
        "calibration": calibration.sha256 if calibration is not None else None,
        **_versions(),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


class _Reader:
    """The calibration images as ``quantize_static`` reads them: one feed per LR image."""

    def __init__(self, calibration: CalibrationSet, input_name: str, input_range: float) -> None:
        self._feeds = iter(
            [
                {input_name: (lr.astype(np.float32).transpose(2, 0, 1)[None] / 255.0 * input_range).copy()}
                for lr in calibration.lr
            ]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def convert_fp16(base: bytes) -> bytes:
    """The fp16 variant of the fp32 ONNX ``base`` (fp32 input and output kept)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load_from_string(base), keep_io_types=True)
    return model.SerializeToString()


def quantize_int8(
    base_path: Path, calibration: CalibrationSet, *, input_name: str, input_range: float
) -> bytes:
    """The int8 QDQ variant of the fp32 ONNX file at ``base_path`` (see the module docstring)."""
    from onnxruntime.quantization import quantize_static

    root = logging.getLogger()
    level = root.level
    # quantize_static logs a pre-processing suggestion on the root logger at WARNING.
    root.setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="srbench-int8-") as tmp:
        out = Path(tmp) / "int8.onnx"
        try:
            _quantize(quantize_static, base_path, out, calibration, input_name, input_range)
        finally:
            root.setLevel(level)
        return out.read_bytes()


def _quantize(
    quantize_static: Any,
    base_path: Path,
    out: Path,
    calibration: CalibrationSet,
    input_name: str,
    input_range: float,
) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType

    quantize_static(
        str(base_path),
        str(out),
        _Reader(calibration, input_name, input_range),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
    )


def _stamp(data: bytes, precision: str, calibration: CalibrationSet | None) -> bytes:
    """``data`` with ``srbench.precision`` (and ``srbench.calibration``: name, size, sha256)
    in its ``metadata_props``, replacing earlier values."""
    import onnx

    proto = onnx.load_from_string(data)
    props = {p.key: p.value for p in proto.metadata_props}
    props["srbench.precision"] = precision
    if calibration is not None:
        props["srbench.calibration"] = json.dumps(calibration.describe(), sort_keys=True)
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def make_variant(
    base_path: Path,
    base_sha256: str,
    precision: str,
    *,
    cache_dir: Path,
    input_name: str,
    input_range: float,
    calibration: CalibrationSet | None,
) -> tuple[Path, str, bool, Variant]:
    """``(path, sha256, cached, record)`` of the ``precision`` variant of ``base_path``.

    Raises:
        SrbenchError: an unknown precision, int8 without a calibration set, or a converter
            failure (one line naming the file).
    """

    if precision not in ("fp16", "int8"):
        raise SrbenchError(f"--precision {precision} is not one of {', '.join(PRECISIONS)}")
    if precision == "int8" and calibration is None:
        raise SrbenchError("--precision int8 needs a calibration set")
    key = variant_key(base_sha256, precision, calibration if precision == "int8" else None)
    path = cache_dir / "variants" / f"{base_path.stem[:40]}-{precision}-{key[:24]}.onnx"
    cached = path.is_file()
    if not cached:
        try:
            if precision == "fp16":
                data = convert_fp16(base_path.read_bytes())
            else:
                assert calibration is not None
                data = quantize_int8(base_path, calibration, input_name=input_name, input_range=input_range)
        except SrbenchError:
            raise
        except Exception as exc:
            first = next((ln for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
            raise SrbenchError(
                f"cannot make the {precision} variant of {base_path.name} ({first[:240]})"
            ) from None
        data = _stamp(data, precision, calibration if precision == "int8" else None)
        atomic_write_bytes(path, data, mkdir=True)
    data = path.read_bytes()
    record = Variant(
        precision=precision,
        method=METHODS[precision],
        base_sha256=base_sha256,
        base_size_bytes=base_path.stat().st_size,
        size_bytes=len(data),
        calibration=calibration.describe() if precision == "int8" and calibration is not None else None,
    )
    return path, hashlib.sha256(data).hexdigest(), cached, record
