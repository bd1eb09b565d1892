"""Measuring models on a dataset: the protocol behind ``srbench run``.

Per model (:func:`measure_model`):

1. build the registered architecture, resolve and strictly load its weights (or mark the
   model ``no-weights``: efficiency figures only);
2. count complexity on the CPU copy at ``profile_input`` (:mod:`.counting`);
3. reset the peak-memory counter, move the model to the device (dtype, channels-last,
   ``torch.compile`` as configured);
4. warm up with ``warmup`` forwards on the first image (excluded from every figure);
5. for each image: copy LR to the device (not timed), time the forward
   (:mod:`.timing`), bring the output to [0,1] fp32, quantise to uint8, compute PSNR-Y,
   SSIM-Y and PSNR-RGB against the HR on the device (:mod:`.metrics`);
6. read the peak memory (:mod:`.memory`) and summarise.

The dataset is decoded once per run into an :class:`ImageCache` shared by all models.
"""

from __future__ import annotations

import gc
import hashlib
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srbench.errors import SrbenchError
from srbench.execution.tiling import DEFAULT_OVERLAP, tiled_forward
from srbench.measure.counting import NTIRE_INPUT_SHAPE, profile_model
from srbench.measure.energy import EnergyMeter, mean_energy
from srbench.measure.memory import PeakMemory
from srbench.measure.metrics import image_quality, to_uint8
from srbench.measure.timing import ForwardTimer, RuntimeStats
from srbench.models.registry import ModelEntry, get_entry
from srbench.reporting.results import (
    STATUS_ERROR,
    STATUS_NO_WEIGHTS,
    STATUS_OK,
    ImageResult,
    ModelResult,
    WeightsInfo,
)

#: Default warm-up forwards. The first forward on CPU pays oneDNN primitive creation and
#: allocator growth (several times a steady forward); on CUDA, context, cuDNN heuristics
#: and kernel loading. Three forwards on the first image's shape reach steady state on
#: every model we ship; ``--ntire-compat`` uses 0, as the challenge did.
DEFAULT_WARMUP = 3

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass
class RunConfig:
    """Everything that defines a run's protocol (recorded as ``config`` in results.json)."""

    models: list[str] = field(default_factory=list)
    data: str | None = None
    layout: str | None = None
    scale: int = 4
    device: str = "auto"
    warmup: int = DEFAULT_WARMUP
    repeat: int = 1
    profile_input: list[int] = field(default_factory=lambda: list(NTIRE_INPUT_SHAPE))
    ntire_compat: bool = False
    dtype: str = "fp32"
    channels_last: bool = False
    compile: bool = False
    cudnn_benchmark: bool = False
    tf32: str | None = None
    seed: int = 0
    deterministic: bool = False
    weights: dict[str, str] = field(default_factory=dict)
    offline: bool = False
    tile: int | None = None
    tile_overlap: int = DEFAULT_OVERLAP
    isolate: bool = True
    model_timeout: float | None = None
    save_images: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)


@dataclass(frozen=True)
class ModelSpec:
    """What ``--models`` named: a display name, a registered architecture and weights."""

    name: str
    arch: str
    weights_path: Path | None = None


def parse_model_specs(text: str, weights: dict[str, str] | None = None) -> list[ModelSpec]:
    """Parse ``--models`` (comma-separated registry names, ``name=path`` or checkpoint paths).

    ``--weights NAME=PATH`` entries attach explicit checkpoints to registry names.
    """
    weights = weights or {}
    specs: list[ModelSpec] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        name, _, path = token.partition("=")
        if path or _looks_like_checkpoint(token):
            ckpt = Path(path or token)
            specs.append(_spec_from_checkpoint(name if path else None, ckpt))
            continue
        entry = get_entry(name)
        explicit = weights.get(name)
        specs.append(ModelSpec(name=name, arch=entry.name, weights_path=Path(explicit) if explicit else None))
    if not specs:
        raise SrbenchError("--models is empty; name at least one model (see 'srbench list')")
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SrbenchError(f"--models names {', '.join(dupes)} more than once; name each model once")
    return specs


def _looks_like_checkpoint(token: str) -> bool:
    return token.endswith((".pth", ".pt", ".safetensors", ".ckpt")) or os.sep in token


def _spec_from_checkpoint(name: str | None, path: Path) -> ModelSpec:
    from srbench.models.loading import detect_architecture, read_checkpoint
    from srbench.models.spandrel_adapter import spandrel_entry

    if not path.is_file():
        raise SrbenchError(f"checkpoint {path} not found; check the path given to --models")
    if name is not None and _is_registered(name):
        return ModelSpec(name=name, arch=name, weights_path=path)
    detected = detect_architecture(read_checkpoint(path))
    if detected is None:
        detected = spandrel_entry(path)
    if detected is None:
        raise SrbenchError(
            f"{path}: no registered architecture fits this checkpoint's keys (nor spandrel's, "
            "if installed: pip install 'srbench[spandrel]'); name it as ARCH=PATH (see 'srbench list')"
        )
    arch, _scale = detected
    return ModelSpec(name=name or path.stem, arch=arch, weights_path=path)


def _is_registered(name: str) -> bool:
    try:
        get_entry(name)
    except SrbenchError:
        return False
    return True


# --------------------------------------------------------------------------- devices


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; refuse CUDA where there is none."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SrbenchError(f"--device {name!r} is not a device; use auto, cpu or cuda[:N]") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SrbenchError(f"--device {name}: no CUDA device is available here; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise SrbenchError(f"--device {name}: only cpu and cuda are supported")
    return device


def check_config(config: RunConfig, device: torch.device) -> None:
    """Refuse option combinations that cannot run on ``device``, with one line each."""
    if config.dtype not in DTYPES:
        raise SrbenchError(f"--dtype {config.dtype!r} is not one of {', '.join(DTYPES)}")
    if device.type != "cuda":
        if config.dtype == "fp16":
            raise SrbenchError("--dtype fp16 needs a CUDA device; use --dtype bf16 or fp32 on CPU")
        if config.cudnn_benchmark:
            raise SrbenchError("--cudnn-benchmark needs a CUDA device; drop it on CPU")
        if config.tf32 is not None:
            raise SrbenchError("--tf32 needs a CUDA device; drop it on CPU")
    if config.warmup < 0 or config.repeat < 1:
        raise SrbenchError("--warmup must be >= 0 and --repeat >= 1")


def apply_backend_settings(config: RunConfig, device: torch.device) -> None:
    """Seeds, determinism, cuDNN benchmark and TF32 flags as configured (process-wide)."""
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    if config.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=False)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = config.cudnn_benchmark
        if config.tf32 is not None:
            on = config.tf32 == "on"
            torch.backends.cuda.matmul.allow_tf32 = on
            torch.backends.cudnn.allow_tf32 = on


# --------------------------------------------------------------------------- images


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
            np.save(root / f"{i:05d}_lr.npy", np.ascontiguousarray(pair.lr))
            np.save(root / f"{i:05d}_hr.npy", np.ascontiguousarray(pair.hr))
            names.append(pair.name)
        (root / "names.txt").write_text("\n".join(names) + "\n")
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


def to_model_input(
    lr: np.ndarray, input_range: float, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    # uint8 HWC -> float (1,C,H,W) on the model's scale. Divided by 255/input_range in
    # float32, exactly as the NTIRE harness's uint2tensor4 does: multiplying by the
    # reciprocal differs in the last bit for some values and so flips a few rounded pixels.
    t = torch.from_numpy(lr).permute(2, 0, 1).unsqueeze(0)
    t = t.to(device=device, non_blocking=True).to(torch.float32)
    if input_range != 255.0:
        t = t / (255.0 / input_range)
    # The HWC permute leaves channels-last strides; without .contiguous() every model would
    # silently run channels-last convolutions, and --channels-last would change nothing.
    return t.to(dtype).contiguous()


# --------------------------------------------------------------------------- measuring

ProgressFn = Callable[[int, int], None]


@dataclass
class _Loaded:
    """A built model; ``reason`` says why its quality is meaningless (None: meaningful)."""

    model: nn.Module
    weights: WeightsInfo | None
    reason: str | None


def build_model(spec: ModelSpec, config: RunConfig) -> tuple[ModelEntry, _Loaded]:
    """Build ``spec``'s architecture and load its weights (strict); CPU, fp32, eval mode."""
    from srbench.models.loading import load_weights, read_checkpoint
    from srbench.models.spandrel_adapter import PREFIX as SPANDREL_PREFIX
    from srbench.models.spandrel_adapter import spandrel_entry
    from srbench.models.weights import fetch_weights, offline_mode, resolve_weights

    if spec.arch.startswith(SPANDREL_PREFIX) and spec.weights_path is not None:
        spandrel_entry(spec.weights_path)  # dynamic entries are per process: re-register here
    entry = get_entry(spec.arch)
    model = entry.build(scale=config.scale)
    if spec.weights_path is None and not any(True for _ in model.parameters()):
        # Nothing to train (bicubic): its output means something without any checkpoint.
        return entry, _Loaded(model.eval(), None, None)
    found = resolve_weights(entry, config.scale, spec.weights_path)
    if found is None and entry.weights_for(config.scale) is not None and not offline_mode(config.offline):
        try:
            found = fetch_weights(entry, config.scale)
        except SrbenchError as exc:
            reason = f"official weights not on disk and the download failed ({exc}); efficiency figures only"
            return entry, _Loaded(model.eval(), None, reason)
    if found is None:
        if not entry.has_trained_weights:
            reason = "no trained weights exist for this architecture; efficiency figures only"
        else:
            reason = (
                f"no official x{config.scale} weights; pass "
                f"--weights {spec.name}=PATH (efficiency figures only)"
            )
        return entry, _Loaded(model.eval(), None, reason)
    load_weights(model, entry, read_checkpoint(found.path), source=str(found.path))
    info = WeightsInfo(file=found.path.name, sha256=found.sha256, source=found.source)
    return entry, _Loaded(model.eval(), info, None)


def measure_model(
    spec: ModelSpec,
    images: ImageCache,
    config: RunConfig,
    *,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ModelResult:
    """Measure one model on ``images`` per the module protocol; never raises for model faults.

    Errors raised while building, loading or running the model become a result with
    ``status="error"`` and the reason, so the run goes on with the next model.
    """
    result = ModelResult(name=spec.name, arch=spec.arch, scale=config.scale, status=STATUS_ERROR)
    try:
        _measure_into(result, spec, images, config, progress, should_stop)
    except SrbenchError as exc:
        result.status, result.reason = STATUS_ERROR, str(exc)
    except Exception as exc:  # a broken model must not take the run down
        result.status, result.reason = STATUS_ERROR, f"{type(exc).__name__}: {exc}"
    return result


def _measure_into(
    result: ModelResult,
    spec: ModelSpec,
    images: ImageCache,
    config: RunConfig,
    progress: ProgressFn | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    device = resolve_device(config.device)
    check_config(config, device)
    apply_backend_settings(config, device)
    dtype = DTYPES[config.dtype]
    phases = result.phases_s

    t0 = time.perf_counter()
    entry, loaded = build_model(spec, config)
    phases["build_and_load"] = time.perf_counter() - t0
    result.input_range = entry.input_range
    result.weights = loaded.weights
    result.reason = loaded.reason

    complexity = profile_model(loaded.model, tuple(config.profile_input), input_range=entry.input_range)
    phases["count"] = complexity.seconds
    result.params, result.flops = complexity.params, complexity.flops
    result.activations, result.convs = complexity.activations, complexity.convs
    result.complexity_input = list(complexity.input_shape)
    result.unsupported_ops = complexity.unsupported_ops
    result.flops_dispatch = complexity.flops_dispatch
    result.functional_convs = complexity.functional_convs
    if complexity.functional_convs:
        result.notes.append(
            f"{complexity.functional_convs} functional convolution call(s) are invisible to the "
            "NTIRE activation/conv counters"
        )

    memory = PeakMemory(device)
    memory.start()
    model = loaded.model.to(device=device, dtype=dtype)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward: Callable[[torch.Tensor], torch.Tensor] = model
    if config.compile:
        forward = torch.compile(model)

    timer = ForwardTimer(device)
    energy = EnergyMeter.for_device(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        x = to_model_input(images.first_lr(), entry.input_range, device, dtype)
        if config.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        # --compile compiles on the first call: that call is never timed, even with --warmup 0.
        for i in range(max(config.warmup, 1 if config.compile else 0)):
            _, ms = timer.time(lambda: forward(x))
            if i == 0 and config.compile:
                phases["compile"] = ms / 1e3
        del x
    phases["warmup"] = time.perf_counter() - t0

    quality = loaded.reason is None
    t0 = time.perf_counter()
    total = len(images)
    with torch.inference_mode():
        for done, (name, lr, hr) in enumerate(images, start=1):
            x = to_model_input(lr, entry.input_range, device, dtype)
            if config.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            energy.begin()
            out, ms, tiled = timed_forward(forward, x, timer, config)
            joules = energy.end(config.repeat)
            sr = check_output(out, x, config.scale, name).float()
            if entry.input_range != 1.0:
                sr = sr / entry.input_range
            sr_u8 = to_uint8(sr)
            img = ImageResult(
                name=name, runtime_ms=ms, tiled=tiled, energy_j=joules, sr_sha256=_fingerprint(sr_u8)
            )
            if config.save_images:
                _save_sr(Path(config.save_images) / spec.name / f"{name}.png", sr_u8)
            if quality:
                hr_t = torch.from_numpy(hr).permute(2, 0, 1).to(device)
                q = image_quality(sr_u8, hr_t, crop_border=config.scale)
                img.psnr_y, img.ssim_y, img.psnr_rgb = q.psnr_y, q.ssim_y, q.psnr_rgb
            result.images.append(img)
            if progress:
                progress(done, total)
            if should_stop and should_stop():
                result.notes.append(f"interrupted after {done} of {total} images")
                break
    phases["loop"] = time.perf_counter() - t0
    result.memory_mb = memory.stop()
    result.memory_kind = memory.kind
    _summarise(result, quality, forced_tiling=config.tile is not None)
    result.energy_j_per_image = mean_energy(i.energy_j for i in result.images)


def _fingerprint(sr_u8: torch.Tensor) -> str:
    """SHA-256 of the uint8 SR image as H×W×3 RGB bytes (see ``ImageResult.sr_sha256``)."""
    return hashlib.sha256(sr_u8.permute(1, 2, 0).contiguous().cpu().numpy().tobytes()).hexdigest()


def _save_sr(path: Path, sr_u8: torch.Tensor) -> None:
    from srbench.data.imageio import write_png_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_png_atomic(path, sr_u8.permute(1, 2, 0).cpu().numpy())


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    # The CPU allocator raises a plain RuntimeError when it cannot allocate.
    return isinstance(exc, RuntimeError) and (
        "can't allocate memory" in str(exc) or "out of memory" in str(exc).lower()
    )


def _free_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def timed_forward(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, timer: ForwardTimer, config: RunConfig
) -> tuple[torch.Tensor, float, bool]:
    """``(output, ms, tiled)``: untiled unless ``--tile`` or out of memory.

    On out-of-memory the image is retried tiled, halving the tile until it fits (down to
    just above twice the overlap); such times are not comparable with untiled ones.
    """

    def tiled(tile: int) -> Callable[[], torch.Tensor]:
        return lambda: tiled_forward(forward, x, scale=config.scale, tile=tile, overlap=config.tile_overlap)

    if config.tile is not None:
        out, ms = timer.time_repeated(tiled(config.tile), config.repeat)
        return out, ms, True
    try:
        out, ms = timer.time_repeated(lambda: forward(x), config.repeat)
        return out, ms, False
    except Exception as exc:
        if not _is_oom(exc):
            raise
    _free_memory(timer.device)
    tile = max(x.shape[-2], x.shape[-1]) // 2
    floor = 2 * config.tile_overlap + 8
    while True:
        try:
            out, ms = timer.time_repeated(tiled(max(tile, floor)), config.repeat)
            return out, ms, True
        except Exception as exc:
            if not _is_oom(exc) or tile <= floor:
                raise
        _free_memory(timer.device)
        tile //= 2


def check_output(out: torch.Tensor, x: torch.Tensor, scale: int, name: str) -> torch.Tensor:
    expected = (x.shape[0], 3, x.shape[-2] * scale, x.shape[-1] * scale)
    if tuple(out.shape) != expected:
        raise SrbenchError(
            f"image {name}: output shape {tuple(out.shape)} is not {expected} "
            f"(input {tuple(x.shape)} x{scale}); the model does not upscale by --scale {scale}"
        )
    if not torch.isfinite(out).all():
        raise SrbenchError(f"image {name}: the model's output contains NaN or Inf")
    return out[0]


def _summarise(result: ModelResult, quality: bool, *, forced_tiling: bool) -> None:
    # Images tiled after running out of memory are timed differently: excluded, and said so.
    # With --tile every image is tiled the same way, so all are comparable and kept.
    fallback = [] if forced_tiling else [i.name for i in result.images if i.tiled]
    times = [i.runtime_ms for i in result.images if i.runtime_ms is not None and i.name not in fallback]
    result.runtime_ms = RuntimeStats.from_samples(times) if times else None
    if fallback:
        result.notes.append(
            f"{len(fallback)} image(s) ran out of memory and were tiled ({', '.join(fallback[:5])}); "
            "their times are excluded from runtime_ms"
        )
    if quality and result.images:
        result.psnr_y = _mean(i.psnr_y for i in result.images)
        result.ssim_y = _mean(i.ssim_y for i in result.images)
        result.psnr_rgb = _mean(i.psnr_rgb for i in result.images)
        result.status = STATUS_OK
    else:
        result.status = STATUS_NO_WEIGHTS


def _mean(values: Any) -> float:
    vals = [float(v) for v in values]
    # Identical SR and HR give +inf PSNR; the mean is then +inf, as in BasicSR.
    return math.inf if any(math.isinf(v) for v in vals) else statistics.fmean(vals)
