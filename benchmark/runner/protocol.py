"""The per-model protocol behind ``srbench run``, as stages.

:func:`measure_model` runs, for one model, each stage below in order. Each is a small
function with one job that returns a record; :func:`summarise` turns the records into the
model's :class:`~srbench.results.schema.ModelResult`.

1. :func:`build_stage`: build the registered architecture, resolve and strictly load its
   weights (or mark the model ``no-weights``: efficiency figures only);
2. :func:`count_stage`: complexity at ``profile_input`` (:mod:`srbench.measure.counting`), read
   from the complexity cache when counted before (``--recount`` counts afresh);
3. :func:`place_stage`: move the model to the device (dtype, channels-last, ``torch.compile``
   as configured) as a :class:`~srbench.backends.base.PlacedModel`: ``forward(x) -> y``.
   With ``--backend onnxruntime``, :func:`deploy_stage` first exports the deployed form to
   ONNX (or finds it in the content-hashed cache; outside every figure) and the backend is an
   ONNX Runtime session on the chosen provider (:mod:`srbench.backends.onnxruntime.session`);
4. :func:`warmup_stage`: ``warmup`` forwards in all, at least one per LR shape (excluded
   from every figure; the very first is ``first_forward_ms``; the CPU memory pass is one);
5. :func:`timed_loop`: for each image, copy LR to the device (not timed; on CUDA read ahead
   on a loader thread into pinned memory), time the forward (:mod:`srbench.measure.timing`),
   then score it (:func:`score_image`: finite check, uint8, fingerprint, PSNR-Y, SSIM-Y and
   PSNR-RGB against the HR on the device, in one lean pass: :mod:`srbench.measure.quality`);
6. :func:`memory_stage`: the forward's peak memory, apart from the timing
   (:mod:`srbench.measure.memory`: on CUDA read around each image's forward; on CPU one
   untimed pass before the timed loop: a warm-up call, or a pass of its own right after
   warm-up; with ``--warmup 0`` after the loop, whose first forward stays cold);
   deployment backends then compare their outputs with PyTorch's on the first images
   (:func:`agreement_stage`, :mod:`srbench.backends.agreement`);
7. :func:`summarise`: statistics over images, status, notes.

The dataset is decoded once per run into an :class:`ImageCache` shared by all models.
"""

from __future__ import annotations

import gc
import math
import os
import pickle
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srbench.backends.agreement import measure_agreement
from srbench.backends.base import Backend, PlacedModel, PlaceRequest
from srbench.backends.onnx_export import INPUT_NAME, ExportMetadata
from srbench.backends.onnxruntime import precision as prec
from srbench.backends.onnxruntime.session import (
    CachedExport,
    OrtBackend,
    OrtModel,
    deploy_file,
    onnx_cache_dir,
    static_overlap,
)
from srbench.backends.pytorch import (
    Tiling,
    TorchBackend,
    check_output,
    memory_tiling,
    timed_forward,
    to_unit_range,
)
from srbench.backends.registry import get_backend
from srbench.core.errors import SrbenchError, cause
from srbench.data.cache import ImageCache
from srbench.data.imageio import write_png_atomic
from srbench.measure import quality
from srbench.measure.complexity_cache import build_arguments, cached_profile
from srbench.measure.counting import VALUE_DEPENDENT_NOTE, Complexity
from srbench.measure.energy import EnergyMeter, mean_energy
from srbench.measure.memory import ForwardMemory
from srbench.measure.onnx_counting import count_onnx
from srbench.measure.shapeprobe import ShapeProbe, croppable, probe_shape_caching
from srbench.measure.timing import (
    DISTURBED_SHARE,
    ForwardSample,
    ForwardTimer,
    RuntimeStats,
    coefficient_of_variation,
    gc_frozen,
)
from srbench.models.registry import ModelEntry
from srbench.models.specs import ModelSpec
from srbench.results.comparison import row_intervals
from srbench.results.config import RunConfig
from srbench.results.schema import (
    STATUS_ERROR,
    STATUS_NO_WEIGHTS,
    STATUS_OK,
    BackendAgreement,
    ImageResult,
    ModelResult,
)
from srbench.runner.building import LoadedModel, build_model
from srbench.runner.checks import apply_backend_settings, check_config
from srbench.runner.failures import describe_failure

ProgressFn = Callable[[int, int], None]


# --------------------------------------------------------------------------- records


@dataclass
class Built:
    """Stage 1: the registry entry, the loaded model and the seconds it took."""

    entry: ModelEntry
    loaded: LoadedModel
    seconds: float

    @property
    def quality(self) -> bool:
        """True when the model's outputs mean something (trained weights or none needed)."""
        return self.loaded.reason is None


@dataclass
class Warmup:
    """Stage 4: wall seconds of the warm-up and, with ``--compile``, the first (compiling) call."""

    seconds: float
    compile_s: float | None = None
    #: The very first forward (ms; None when no warm-up ran) and the number of warm-up calls.
    first_forward_ms: float | None = None
    calls: int = 0
    #: Seconds of the CPU memory pass when it ran as a warm-up call (not in ``seconds``).
    memory_s: float | None = None


@dataclass
class Loop:
    """Stage 5: one record per image measured (so far), wall seconds, and the stop note."""

    images: list[ImageResult] = field(default_factory=list)
    seconds: float | None = None
    interrupted: str | None = None
    #: LR pixels (H*W) of each image, by name (the busy check compares time per pixel).
    pixels: dict[str, int] = field(default_factory=dict)
    #: The image being run, ``(name, (width, height))`` of its LR: named if the model raises.
    current: tuple[str, tuple[int, int]] | None = None


@dataclass
class Stages:
    """The records of the stages that have run; an error leaves the later ones ``None``."""

    built: Built | None = None
    complexity: Complexity | None = None
    warmup: Warmup | None = None
    loop: Loop | None = None
    #: ForwardMemory (torch; ONNX Runtime on the CPU), a deployment's own meter, or None (off).
    memory: Any = None
    memory_mb: float | None = None
    shape_probe: ShapeProbe | None = None
    #: Wall seconds of the memory pass and of the shape probe (``phases_s``: both are fixed
    #: costs a run pays per model, outside the warm-up and the timed loop).
    memory_s: float | None = None
    probe_s: float | None = None
    #: The placed model and the warm-up image ``(name, (width, height))``, for error messages.
    backend: PlacedModel | None = None
    current: tuple[str, tuple[int, int]] | None = None
    #: Deployment backends only: the exported file (``srbench.backends.onnxruntime.session.Deployment``) and
    #: the session's provider, then the agreement with PyTorch.
    deployment: Any = None
    provider: str | None = None
    session_s: float | None = None
    agreement: BackendAgreement | None = None
    #: The browser backend's facts (``ModelResult.backend_info``).
    backend_info: dict[str, Any] | None = None


# --------------------------------------------------------------------------- the protocol


def measure_model(
    spec: ModelSpec,
    images: ImageCache,
    config: RunConfig,
    *,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    measure_memory: bool = True,
) -> ModelResult:
    """Measure one model on ``images`` per the module protocol; never raises for model faults.

    Errors raised while building, loading or running the model become a result with
    ``status="error"`` and the reason (keeping what the earlier stages measured), so the run
    goes on with the next model.
    """
    stages = Stages()
    try:
        # Everything alive now is left out of the collections that run during the measurement
        # (see srbench.measure.timing): a full one would otherwise cost ≈0.1 s between images.
        with gc_frozen():
            run_stages(
                stages,
                spec,
                images,
                config,
                progress=progress,
                should_stop=should_stop,
                measure_memory=measure_memory,
            )
    except SrbenchError as exc:
        return summarise(spec, config, stages, error=str(exc))
    except Exception as exc:  # a broken model must not take the run down
        return summarise(spec, config, stages, error=failure_reason(spec, stages, len(images), exc))
    return summarise(spec, config, stages)


def failure_reason(spec: ModelSpec, stages: Stages, total: int, exc: Exception) -> str:
    """The error row's reason for a model that raised: the image it raised on (name, LR size),
    the smallest input it accepts when the image was too small, and how many images it had
    measured (see :mod:`srbench.runner.failures`)."""
    loop = stages.loop
    current = loop.current if loop is not None and loop.current is not None else stages.current
    if current is None or stages.backend is None:  # building or counting failed
        return f"{type(exc).__name__}: {cause(exc)}"
    backend = stages.backend

    def probe(side: int) -> object:
        with torch.inference_mode():
            return backend.forward(backend.to_input(np.zeros((side, side, 3), np.uint8)))

    name, size = current
    done = len(loop.images) if loop is not None else 0
    phase = "" if loop is not None and loop.current is not None else " (warm-up)"
    reason = str(describe_failure(spec.name, f"image {name}{phase}", exc, size=size, probe=probe))
    return f"{reason} [{done} of {total} images measured before it]"


def run_stages(
    stages: Stages,
    spec: ModelSpec,
    images: ImageCache,
    config: RunConfig,
    *,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    measure_memory: bool = True,
) -> None:
    """Stages 1-6 in order, each record stored in ``stages`` as soon as it exists.

    ``measure_memory=False`` leaves the memory meter out entirely (``bench``'s
    ``meters.timing_ratio`` compares timings with it on and off).
    """
    kind = get_backend(config.backend)
    device = kind.device(config)
    check_config(config, device)
    apply_backend_settings(config, device)
    stages.built = build_stage(spec, config)
    stages.complexity = count_stage(stages.built, config, spec, device)
    if kind.exported:
        stages.deployment = deploy_stage(kind, stages.built, spec, config, images)
    stages.memory = kind.memory_meter(config, device) if measure_memory else None
    if stages.memory is not None and not isinstance(stages.memory, ForwardMemory):
        stages.memory.start()  # a deployment's device meter starts before its session exists
    t0 = time.perf_counter()
    backend = place_stage(kind, stages.built, config, device, images, stages.deployment)
    if stages.deployment is not None:
        stages.session_s = time.perf_counter() - t0
    stages.provider = backend.provider_name
    stages.backend_info = backend.backend_info
    stages.backend = backend
    if len(images):
        first = images.first_lr()
        stages.current = (images.names[0], (first.shape[1], first.shape[0]))
    try:
        timer = ForwardTimer(device)
        tiling = Tiling(scale=config.scale, tile=config.tile, overlap=config.tile_overlap)

        def warming(name: str, size: tuple[int, int]) -> None:
            stages.current = (name, size)

        torch_meter = stages.memory if isinstance(stages.memory, ForwardMemory) else None
        cpu_meter = torch_meter if torch_meter is not None and not torch_meter.per_forward else None
        stages.warmup = warmup_stage(
            backend,
            images,
            config,
            timer,
            tiling=tiling,
            on_image=warming,
            # The CPU memory pass doubles as a warm-up call: one forward fewer per model.
            memory_pass=cpu_memory_pass(cpu_meter, backend) if cpu_meter is not None else None,
        )
        stages.memory_s = stages.warmup.memory_s
        # A deployed session's meter is read before the timed loop, before srbench's metrics
        # run. The CPU pass (a live-tensor count: history does not move it) normally ran as
        # a warm-up call; with --warmup 0 (--ntire-compat) it runs after the loop instead,
        # so that the first timed forward stays the cold first call the challenge times.
        reads_in_loop = torch_meter is not None and (torch_meter.per_forward or config.warmup == 0)
        if cpu_meter is not None and stages.memory_s is not None:
            # The warm-up ran the pass (or tried it: an image that fails there is the timed
            # loop's to report); a second pass would repeat that forward.
            stages.memory_mb = cpu_meter.megabytes()
        elif stages.memory is not None and not reads_in_loop:
            t0 = time.perf_counter()
            stages.memory_mb = memory_stage(stages.memory, backend, images, timer, tiling)
            if cpu_meter is not None:  # a pass of its own ran just now
                stages.memory_s = time.perf_counter() - t0
        stages.loop = Loop()
        # What building, counting and warm-up made joins the frozen objects too (measure_model's
        # gc_frozen gives them all back at the end): the loop's collections scan only its own.
        gc.freeze()
        timed_loop(
            stages.loop,
            backend,
            images,
            config,
            timer=timer,
            tiling=tiling,
            quality=stages.built.quality,
            memory=torch_meter,
            # Random-init output is never kept as a result image (the note says so in summarise).
            save_dir=Path(config.save_images) / spec.name
            if config.save_images and stages.built.quality
            else None,
            progress=progress,
            should_stop=should_stop,
        )
        stages.loop.current = stages.current = None  # past the images: a later error names none
        if stages.memory is not None and reads_in_loop:
            t0 = time.perf_counter()
            stages.memory_mb = memory_stage(stages.memory, backend, images, timer, tiling)
            if cpu_meter is not None:
                stages.memory_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        stages.shape_probe = shape_probe_stage(backend, images, config, timer, stages.loop)
        stages.probe_s = time.perf_counter() - t0
        if stages.deployment is not None and stages.loop.interrupted is None:
            if stages.deployment.base is not None:  # a precision variant: against its fp32 file
                stages.agreement = variant_agreement_stage(stages.deployment, backend, images, config)
            elif spec.onnx is None:  # an ONNX file has no PyTorch network to agree with
                stages.agreement = agreement_stage(stages.built, backend, images, config, device)
    finally:
        backend.close()


def build_stage(spec: ModelSpec, config: RunConfig) -> Built:
    """Stage 1: build and load (:func:`~srbench.runner.building.build_model`), timed."""
    t0 = time.perf_counter()
    entry, loaded = build_model(spec, scale=config.scale, offline=config.offline)
    return Built(entry, loaded, time.perf_counter() - t0)


def count_stage(
    built: Built, config: RunConfig, spec: ModelSpec, device: torch.device | None = None
) -> Complexity:
    """Stage 2: params, FLOPs, activations and convs at ``config.profile_input``, read from the
    complexity cache when counted before (:mod:`srbench.measure.complexity_cache`; ``--recount``
    counts afresh). On CUDA the model is counted on the device (fp32, before the run's dtype),
    where fvcore's traced forward is faster; elsewhere on the CPU copy, in a forked child
    (:func:`counted_apart`), so that this process's timed loop starts as cold as on a rerun."""

    if spec.onnx is not None:
        return count_onnx_file(spec.onnx.path, tuple(config.profile_input), static_hw=spec.onnx.static_hw)
    if device is not None and device.type == "cuda":
        built.loaded.model.to(device)

    def count() -> Complexity:
        complexity, _ = cached_profile(
            built.loaded.model,
            tuple(config.profile_input),
            arch=spec.arch,
            build_args=build_arguments(built.entry, spec),
            scale=config.scale,
            input_range=built.entry.input_range,
            recount=config.recount,
        )
        return complexity

    if (device is not None and device.type == "cuda") or torch.cuda.is_initialized():
        return count()
    return counted_apart(count)


def counted_apart(count: Callable[[], Complexity]) -> Complexity:
    """``count()`` run in a forked child process, its result sent back (POSIX; elsewhere here).

    Counting runs several forwards at the profile input (fvcore's trace, the hooks, thop,
    FlopCounterMode). In this process they would warm what the timed loop is meant to find
    cold (the allocator's free lists and the kernel caches): the first run of a model, which
    counts, then timed its images faster than a rerun, which reads the counts from the
    complexity cache. Counting in a child leaves this process exactly as it was. The child's
    own output goes nowhere (a team's prints must not interleave with progress bars whose
    locks the fork copied); its exception comes back as the error.
    """
    if not hasattr(os, "fork"):
        return count()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read)
        try:
            sys.stdout = sys.stderr = open(os.devnull, "w")
            try:
                payload = pickle.dumps(("ok", count()))
            except BaseException as exc:
                try:
                    payload = pickle.dumps(("error", exc))
                except Exception:
                    payload = pickle.dumps(("error", SrbenchError(f"{type(exc).__name__}: {cause(exc)}")))
            with os.fdopen(write, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise SrbenchError(
            f"counting complexity killed its process (wait status {status}): the model crashed at the "
            "profile input; try a smaller --profile-input"
        )
    kind, value = pickle.loads(data)
    if kind == "error":
        raise value
    return value


def count_onnx_file(
    path: Path, shape: tuple[int, ...], *, static_hw: tuple[int, int] | None = None
) -> Complexity:
    """Stage 2 for an ONNX file: srbench's ONNX graph counter
    (:func:`srbench.measure.onnx_counting.count_onnx`) as a :class:`Complexity` (no fvcore,
    thop or dispatch figures: there is no PyTorch network to trace). A file with a fixed
    input size (``static_hw``) is counted at that size, and a note says so."""
    import onnx

    note = None
    if static_hw is not None and tuple(shape[2:]) != static_hw:
        note = (
            f"counted at the file's fixed input {shape[0]}x{shape[1]}x{static_hw[0]}x{static_hw[1]}, "
            f"not at {'x'.join(map(str, shape))}: the graph takes no other size"
        )
        shape = (*shape[:2], *static_hw)
    c = count_onnx(onnx.load(str(path)), shape)
    return Complexity(
        flops_note=note,
        input_shape=c.input_shape,
        params=c.params,
        flops=c.flops,
        activations=c.activations,
        convs=c.convs,
        unsupported_ops=c.unsupported_ops,
        seconds=c.seconds,
    )


def place_stage(
    kind: Backend,
    built: Built,
    config: RunConfig,
    device: torch.device,
    images: ImageCache,
    deployment: Any = None,
) -> PlacedModel:
    """Stage 3: the model placed by its backend (:meth:`srbench.backends.base.Backend.place`),
    ready to call; an exported backend places ``deployment``."""
    request = PlaceRequest(
        built.loaded.model,
        input_range=built.entry.input_range,
        scale=config.scale,
        device=device,
        deployment=deployment,
        lr_shapes=tuple(images.lr_shapes()) if len(images) else (),
    )
    return kind.place(request, config)


def deploy_stage(
    kind: Backend, built: Built, spec: ModelSpec, config: RunConfig, images: ImageCache | None = None
) -> Any:
    """Stage 3a (deployment backends): the ONNX file of the deployed model, from the cache or
    exported now (:func:`srbench.backends.onnxruntime.session.deploy`), or the user's file as it is; for a
    precision variant (``spec.precision``) then its fp16/int8 form
    (:func:`srbench.backends.onnxruntime.precision.make_variant`, int8 calibrated on a set
    checked to share no image with ``images``). Its seconds are ``phases_s.export``."""
    t0 = time.perf_counter()
    base = _base_deployment(kind, built, spec, config)
    if spec.precision == "fp32":
        return base
    calibration = None
    if spec.precision == "int8":
        calibration = prec.load_calibration(config.calibration, config.scale)
        if images is not None:
            option = f"--calibration {config.calibration}" if config.calibration else "--precision int8"
            prec.check_no_overlap(calibration, prec.evaluated_hashes(images), option)
    path, sha, cached, record = prec.make_variant(
        base.export.path,
        base.export.sha256,
        spec.precision,
        cache_dir=onnx_cache_dir(),
        input_name=spec.onnx.input_name if spec.onnx is not None else INPUT_NAME,
        input_range=built.entry.input_range,
        calibration=calibration,
    )
    return replace(
        base,
        export=CachedExport(path, sha, cached),
        seconds=time.perf_counter() - t0,
        precision=spec.precision,
        variant=record,
        base=base.export,
    )


def _base_deployment(kind: Backend, built: Built, spec: ModelSpec, config: RunConfig) -> Any:
    if spec.onnx is not None:
        return deploy_file(
            spec.onnx.path, spec.onnx.sha256, opset=spec.onnx.opset, static_hw=spec.onnx.static_hw
        )
    weights = built.loaded.weights
    meta = ExportMetadata(
        model=spec.name,
        arch=built.entry.name,
        scale=config.scale,
        input_range=built.entry.input_range,
        weights_sha256=weights.sha256 if weights else "",
        dtype=config.dtype,
    )
    return kind.deploy(built.loaded.model, meta)


def variant_agreement_stage(
    deployment: Any, backend: Backend, images: ImageCache, config: RunConfig
) -> BackendAgreement:
    """Stage 6a for a precision variant: its outputs vs its fp32 ONNX file's on the same
    provider, on the first images (:func:`srbench.backends.agreement.measure_agreement` with the
    variant's tolerance); untimed."""

    session = OrtBackend(deployment.base.path, provider=config.ort_provider, scale=config.scale)
    reference = OrtModel(session, backend.input_range, backend.device, torch.float32, deployment.static_hw)

    return measure_agreement(
        images,
        _unit_output(backend, config.scale),
        _unit_output(reference, config.scale),
        dtype=deployment.precision,
        reference_label=f"the fp32 ONNX file on onnxruntime ({config.ort_provider})",
    )


def _unit_output(model: PlacedModel, scale: int) -> Callable[[Any], torch.Tensor]:
    """``lr uint8 -> float32 output on [0, 1]`` of a placed model, as the agreement check compares."""

    def run(lr: Any) -> torch.Tensor:
        x = model.to_input(lr)
        return to_unit_range(model.forward(x), x, scale, "agreement", model.input_range)

    return run


def agreement_stage(
    built: Built, backend: PlacedModel, images: ImageCache, config: RunConfig, device: torch.device
) -> BackendAgreement:
    """Stage 6a (deployment backends): outputs vs PyTorch fp32 on the run's device, on the first
    images (:func:`srbench.backends.agreement.measure_agreement`); untimed."""

    reference = TorchBackend.prepare(built.loaded.model, input_range=built.entry.input_range, device=device)

    return measure_agreement(
        images,
        _unit_output(backend, config.scale),
        _unit_output(reference, config.scale),
        dtype=config.dtype,
        reference_label=f"torch fp32 on {device}",
    )


def warmup_stage(
    backend: PlacedModel,
    images: ImageCache,
    config: RunConfig,
    timer: ForwardTimer,
    *,
    tiling: Tiling | None = None,
    on_image: Callable[[str, tuple[int, int]], None] | None = None,
    memory_pass: Callable[[Callable[[], torch.Tensor]], None] | None = None,
) -> Warmup:
    """Stage 4: ``config.warmup`` untimed forwards in all, at least one on the first image of
    every distinct LR shape (so no first-of-shape cost: oneDNN primitives, allocator growth,
    cuDNN heuristics, lands in a timed forward): one on each other shape's first image and
    the rest (at least one) on the first image, first. ``--warmup 0`` runs none. Each call
    is tiled as the timed forwards will be (``tiling``).

    The very first call is timed apart (``first_forward_ms``). ``--compile`` compiles on the
    first call: that call is never timed, even with ``--warmup 0``. ``on_image(name, (w, h))``
    is told each warm-up image (error messages name it).

    ``memory_pass(run)`` (the CPU memory meter, :func:`memory_stage`'s pass): the last
    warm-up call at the shape of the largest LR image runs as ``memory_pass(run)`` instead
    of a plain call, unless it is the very first call (cold, timed apart) or the model is
    compiled; :attr:`Warmup.memory_s` is then set (its seconds are not in
    :attr:`Warmup.seconds`). A run is warm after it either way: the meter only observes
    which tensors the operators return.
    """
    tiling = tiling or Tiling(scale=config.scale)
    compile_s = first_ms = memory_s = None
    calls = 0
    t0 = time.perf_counter()
    shapes = images.lr_shapes()
    first_of_shape: dict[tuple[int, ...], int] = {}
    for i, shape in enumerate(shapes):
        first_of_shape.setdefault(shape, i)
    # At least one call per distinct shape; the first image's shape takes the rest of the
    # `warmup` calls (the process-wide first-call costs are paid once, whatever the shape).
    others = [i for i in first_of_shape.values() if i != 0] if config.warmup > 0 else []
    first_calls = max(config.warmup - len(others), 1 if config.warmup > 0 or config.compile else 0)
    plan = [(0, first_calls), *((i, 1) for i in others)] if shapes else []
    metered = None  # the plan entry whose last call is the memory pass
    if memory_pass is not None and config.warmup > 0 and not config.compile:
        at = first_of_shape[shapes[largest_lr(shapes)]]
        metered = next(k for k, (index, _) in enumerate(plan) if index == at)
        if plan[metered][1] == 1 and metered == 0:
            metered = None  # the only call is the cold first one: a pass of its own after
    with torch.inference_mode():
        for k, (index, count) in enumerate(plan):
            if count == 0:
                continue
            lr = images.lr(index)
            if on_image is not None:
                on_image(images.names[index], (lr.shape[1], lr.shape[0]))
            x = backend.to_input(lr)
            for c in range(count):
                if memory_pass is not None and k == metered and c == count - 1:
                    m0 = time.perf_counter()
                    try:
                        # The input is made inside the pass: it is part of the figure.
                        memory_pass(lambda lr=lr: forward_once(backend, lr, timer, tiling))
                    except Exception:
                        if index == 0:
                            raise
                        break  # as a plain call would; memory_stage leaves it unmeasured
                    finally:
                        memory_s = time.perf_counter() - m0
                    calls += 1
                    continue
                try:
                    _, ms, _ = timed_forward(backend.forward, x, timer, tiling, 1)
                except Exception:
                    if index == 0:
                        raise
                    # Another shape the model cannot run (too small, out of memory): the timed
                    # loop meets it again and handles it there (an error naming the image after
                    # the images before it are kept, or the tiling fallback).
                    break
                if calls == 0:
                    first_ms = ms
                    if config.compile:
                        compile_s = ms / 1e3
                calls += 1
    seconds = time.perf_counter() - t0 - (memory_s or 0.0)
    return Warmup(seconds, compile_s, first_ms, calls, memory_s)


def largest_lr(shapes: list[tuple[int, ...]]) -> int:
    """Index of the LR image with the most pixels (the first of equals): the memory pass's."""
    return max(range(len(shapes)), key=lambda i: (shapes[i][0] * shapes[i][1], -i))


def shape_probe_stage(
    backend: PlacedModel, images: ImageCache, config: RunConfig, timer: ForwardTimer, loop: Loop
) -> ShapeProbe:
    """After the loop (and the memory reading): does the forward time drop sharply only on
    shapes already seen? See :mod:`srbench.measure.shapeprobe`."""
    reason = (
        "the browser backend times session.run in the page, not forward() calls"
        if backend.self_timed
        else "--compile recompiles per shape"
        if config.compile
        else "--cudnn-benchmark autotunes per shape"
        if config.cudnn_benchmark
        else "--tile"
        if config.tile is not None
        else "images were tiled after running out of memory (an untiled probe would too)"
        if any(i.tiled for i in loop.images)
        else None
    )
    if reason is None and loop.interrupted:
        reason = "the run was interrupted"
    # The probe's picture: the smallest LR image that can be cropped (a new shape costs one
    # forward, the cheapest there is), compared with its own timed forward in the loop; when
    # none can be, the smallest, and the probe says it is too small to crop.
    shapes = images.lr_shapes()
    by_size = sorted(range(len(shapes)), key=lambda i: (shapes[i][0] * shapes[i][1], i))
    at = next((i for i in by_size if croppable(shapes[i])), by_size[0] if by_size else None)
    seen = loop.images[at] if at is not None and at < len(loop.images) else None
    if reason is None and (seen is None or seen.name != images.names[at] or seen.runtime_ms is None):
        reason = "the probed image has no timed forward to compare with"
    if reason:
        return ShapeProbe(skipped=reason)
    assert at is not None and seen is not None and seen.runtime_ms is not None
    try:
        with torch.inference_mode():
            x = backend.to_input(images.lr(at))
        return probe_shape_caching(backend.forward, x, timer, seen.runtime_ms, seen_costs(seen, timer))
    except Exception as exc:  # e.g. out of memory untiled: the probe never fails a model
        return ShapeProbe(skipped=f"probe failed: {type(exc).__name__}: {cause(exc, 200)}")


def seen_costs(img: ImageResult, timer: ForwardTimer) -> list[float] | None:
    """The cost (ms) of each timed forward of ``img`` (:attr:`ForwardSample.cost_ms`): CPU
    time, from its CPU shares and wall times (share × wall × threads), disturbed forwards
    included (a preemption does not add CPU time); None when not recorded (CUDA: the probe
    times its own reference)."""
    shares = img.runtime_cpu_share
    if not shares or any(v is None for v in shares):
        return None
    walls = img.runtime_samples_ms or [img.runtime_ms]
    return [float(v) * float(ms) * timer.threads for v, ms in zip(shares, walls, strict=True)]


def timed_loop(
    loop: Loop,
    backend: PlacedModel,
    images: ImageCache,
    config: RunConfig,
    *,
    timer: ForwardTimer,
    tiling: Tiling,
    quality: bool,
    memory: ForwardMemory | None = None,
    save_dir: Path | None = None,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Loop:
    """Stage 5: per image, the timed forward(s) then :func:`score_image`; appends to ``loop.images``.

    On CUDA the memory meter reads its peak around each image's forward(s), outside the
    timed region; on CPU it does nothing here (:func:`memory_stage` runs its own pass).
    """
    energy = EnergyMeter.for_device(backend.device)
    t0 = time.perf_counter()
    total = len(images)
    with torch.inference_mode():
        # On CUDA a loader thread reads the next pair into pinned memory during this forward,
        # so the LR and HR copies to the device do not block; on the CPU a thread would
        # compete with the timed forward for the cores.
        pairs = images.prefetched(pin_memory=True) if backend.device.type == "cuda" else iter(images)
        for done, (name, lr, hr) in enumerate(pairs, start=1):
            loop.current = (name, (lr.shape[1], lr.shape[0]))
            loop.pixels[name] = int(lr.shape[0] * lr.shape[1])
            loop.images.append(
                _measure_image(
                    name,
                    lr,
                    hr if quality else None,
                    backend,
                    config,
                    timer,
                    tiling,
                    energy,
                    memory,
                    save_dir,
                )
            )
            if progress:
                progress(done, total)
            if should_stop and should_stop():
                loop.interrupted = f"interrupted after {done} of {total} images"
                break
    loop.seconds = time.perf_counter() - t0
    return loop


def _measure_image(
    name: str,
    lr: Any,
    hr: Any | None,
    backend: PlacedModel,
    config: RunConfig,
    timer: ForwardTimer,
    tiling: Tiling,
    energy: EnergyMeter,
    memory: ForwardMemory | None,
    save_dir: Path | None,
) -> ImageResult:
    # One function per image: its tensors are freed on return, so none is still allocated
    # when the next image's memory peak is reset.
    x = backend.to_input(lr)
    if memory is not None:
        memory.before_forward()
    energy.begin()
    if backend.self_timed:
        # The browser times session.run in the page (performance.now()); a Python
        # timer around the call would add the page round trip.
        out, ms = backend.timed(x, config.repeat)
        tiled = False
    else:
        # An output estimated not to fit untiled is tiled before it runs (backends.pytorch).
        tiling = memory_tiling(tiling, x.shape[-2], x.shape[-1], timer.device, name=name)
        out, ms, tiled = timed_forward(backend.forward, x, timer, tiling, config.repeat, remeasure=True)
    # Per forward: over every forward run, re-measured ones included.
    forwards = config.repeat if backend.self_timed else len(timer.last_samples)
    joules = energy.end(forwards)
    if memory is not None:
        memory.after_forward()
    check_output(out, x, config.scale, name, finite=False)  # finite: checked while scoring
    del x
    img = ImageResult(name=name, runtime_ms=ms, tiled=tiled, energy_j=joules)
    if not backend.self_timed:
        record_samples(img, timer.last_samples)
    score_image(img, out, hr, crop_border=config.scale, input_range=backend.input_range, save_dir=save_dir)
    return img


def record_samples(img: ImageResult, samples: list[ForwardSample]) -> None:
    """Every timed forward of ``img`` with its disturbance record (README "Runtime"): the
    times when more than one ran, and per forward the flag, CPU share and context switches."""
    img.runtime_samples_ms = [s.ms for s in samples] if len(samples) > 1 else None
    img.runtime_disturbed = [s.disturbed for s in samples]
    if any(s.cpu_share is not None for s in samples):
        img.runtime_cpu_share = [None if s.cpu_share is None else round(s.cpu_share, 4) for s in samples]
        img.runtime_nivcsw = [s.nivcsw for s in samples]


def score_image(
    img: ImageResult,
    out: torch.Tensor,
    hr: Any | None,
    *,
    crop_border: int,
    input_range: float = 1.0,
    save_dir: Path | None = None,
) -> None:
    """Stage 5, per image: quantise the model's output ``out`` ((1, 3, H, W) on
    ``[0, input_range]``, on the device) to uint8, fingerprint it, save it if asked, and score
    it against ``hr`` (uint8 (H, W, 3); None: no quality figures) into ``img``, in one lean pass
    (:func:`srbench.measure.quality.score_image`; raises :class:`SrbenchError` for NaN/Inf)."""
    score = quality.score_image(out, hr, crop_border=crop_border, input_range=input_range, name=img.name)
    img.sr_sha256 = score.sr_sha256
    img.psnr_y, img.ssim_y, img.psnr_rgb = score.psnr_y, score.ssim_y, score.psnr_rgb
    if save_dir is not None:
        _save_sr(save_dir / f"{img.name}.png", score.sr_u8)


def memory_stage(
    memory: Any, backend: PlacedModel, images: ImageCache, timer: ForwardTimer, tiling: Tiling
) -> float | None:
    """Stage 6: the model's forward peak in MB (:mod:`srbench.measure.memory`).

    CUDA: the maximum read around the timed forwards. CPU: the pass on the largest LR image
    (most pixels), tiled as the timed forwards were, unless the warm-up already ran it (see
    :func:`warmup_stage`); before the timed loop (after it with ``--warmup 0``). When that
    pass fails on an image other than the first, the figure is left unmeasured: the timed
    loop meets the image and reports it.
    A deployment's own meter (ONNX Runtime on a GPU, the browser) is read now.
    """
    if not isinstance(memory, ForwardMemory):
        return memory.stop()
    if not memory.per_forward and memory.peak_bytes is None and len(images):
        at = largest_lr(images.lr_shapes())
        lr = images.lr(at)

        def one_pass() -> torch.Tensor:
            with torch.inference_mode():
                return forward_once(backend, lr, timer, tiling)

        try:
            cpu_memory_pass(memory, backend)(one_pass)
        except Exception:
            if at == 0:
                raise
            # The timed loop meets this image again and handles it (tiling, or an error
            # naming it after the images before it are kept); memory stays unmeasured.
    return memory.megabytes()


def forward_once(backend: PlacedModel, lr: Any, timer: ForwardTimer, tiling: Tiling) -> torch.Tensor:
    """The model's output for LR image ``lr``: its input made, one forward tiled as the timed
    ones (the memory pass's forward, wherever it runs)."""
    return timed_forward(backend.forward, backend.to_input(lr), timer, tiling)[0]


def cpu_memory_pass(memory: ForwardMemory, backend: PlacedModel) -> Callable[[Callable[[], Any]], None]:
    """``pass_(run)``: the CPU meter's pass over ``run()`` with the placed model's weights resident."""

    def pass_(run: Callable[[], Any]) -> None:
        memory.measure_pass(run, resident=backend.resident())

    return pass_


def _save_sr(path: Path, sr_u8: torch.Tensor) -> None:
    """Write the quantised uint8 (H, W, 3) SR image as a PNG."""

    path.parent.mkdir(parents=True, exist_ok=True)
    write_png_atomic(path, sr_u8.numpy())


# --------------------------------------------------------------------------- summary


def summarise(spec: ModelSpec, config: RunConfig, stages: Stages, *, error: str | None = None) -> ModelResult:
    """Stage 7: the :class:`ModelResult` of the records in ``stages``.

    With ``error`` the status is ``error`` and the reason is ``error``; the figures of the
    stages that completed are kept.
    """
    name = config.row_name(spec.name)
    result = ModelResult(name=name, arch=spec.arch, scale=config.scale, status=STATUS_ERROR)
    result.backend, result.dtype = config.backend, config.dtype
    result.provider = stages.provider
    phases = result.phases_s
    if stages.deployment is not None:
        result.deployed = stages.deployment.describe()
        phases["export"] = stages.deployment.seconds
        hw = stages.deployment.static_hw
        if hw is not None:
            result.notes.append(
                f"static input 1x3x{hw[0]}x{hw[1]}: every image ran through the tiler in "
                f"{min(hw)}x{min(hw)} windows (overlap {static_overlap(hw)}), windows smaller than "
                f"{hw[0]}x{hw[1]} edge-padded; its times include the tiling"
            )
    built = stages.built
    if spec.onnx is not None and stages.complexity is not None:
        result.notes.append(
            "params/FLOPs/activations/convs counted on the ONNX graph by srbench's counter "
            "(srbench.measure.onnx_counting), not by fvcore on a PyTorch network"
        )
    if built is not None:
        phases["build_and_load"] = built.seconds
        result.input_range = built.entry.input_range
        result.weights = built.loaded.weights
        result.reason = built.loaded.reason
        result.notes.extend(built.loaded.notes)
        if built.loaded.device_shim:
            result.device_shim = True
        if config.save_images and not built.quality:
            result.notes.append("SR images not saved: without trained weights the output is not a result")
    c = stages.complexity
    if c is not None:
        phases["count"] = c.seconds
        result.params, result.flops = c.params, c.flops
        result.activations, result.convs = c.activations, c.convs
        result.complexity_input = list(c.input_shape)
        result.unsupported_ops = c.unsupported_ops
        result.flops_dispatch = c.flops_dispatch
        result.functional_convs = c.functional_convs
        result.flops_lower_bound = c.flops_lower_bound
        result.flops_undercount = c.flops_undercount
        result.flops_thop = c.flops_thop
        if c.flops_note:
            result.notes.append(c.flops_note)
        if c.value_dependent:
            result.notes.append(VALUE_DEPENDENT_NOTE)
        if c.functional_convs:
            result.notes.append(
                f"{c.functional_convs} functional convolution call(s) are invisible to the "
                "NTIRE activation/conv counters"
            )
    if stages.session_s is not None:
        phases["session"] = stages.session_s
    if stages.warmup is not None:
        if stages.warmup.compile_s is not None:
            phases["compile"] = stages.warmup.compile_s
        phases["warmup"] = stages.warmup.seconds
    loop = stages.loop
    if loop is not None:
        result.images = loop.images
        if loop.interrupted:
            result.notes.append(loop.interrupted)
        if loop.seconds is not None:
            phases["loop"] = loop.seconds
    if stages.memory_s is not None:
        phases["memory"] = stages.memory_s
    if stages.probe_s is not None:
        phases["shape_probe"] = stages.probe_s
    if error is not None:
        result.status, result.reason = STATUS_ERROR, error
        return result
    assert built is not None and loop is not None
    if stages.memory is not None:
        result.memory_mb = stages.memory_mb
        result.memory_kind = stages.memory.kind
        note = getattr(stages.memory, "note", None)
        if note:
            result.notes.append(note)
    _runtime_summary(result, loop.pixels, forced_tiling=config.tile is not None)
    result.first_forward_ms = _first_forward_ms(stages.warmup, result.images)
    result.warmup_calls = stages.warmup.calls if stages.warmup is not None else 0
    if built.quality and result.images:
        result.psnr_y = _mean(i.psnr_y for i in result.images)
        result.ssim_y = _mean(i.ssim_y for i in result.images)
        result.psnr_rgb = _mean(i.psnr_rgb for i in result.images)
        result.status = STATUS_OK
    else:
        result.status = STATUS_NO_WEIGHTS
    result.energy_j_per_image = mean_energy(i.energy_j for i in result.images)
    # The intervals of the headline figures, once, from the same per-image figures as they.
    result.intervals = row_intervals(
        result, ntire_compat=config.ntire_compat, forced_tiling=config.tile is not None
    )
    if stages.shape_probe is not None:
        result.shape_probe = asdict(stages.shape_probe)
        note = stages.shape_probe.note()
        if note:
            result.notes.append(note)
    result.backend_agreement = stages.agreement
    result.backend_info = stages.backend_info
    if stages.backend_info and stages.backend_info.get("fallback"):
        result.notes.append(f"{stages.backend_info['provider_requested']}: {stages.backend_info['fallback']}")
    if stages.agreement is not None and not stages.agreement.within_tolerance:
        a = stages.agreement
        result.notes.append(
            f"output drifts from PyTorch: max |diff| {a.max_abs_diff:.2e} > tolerance {a.tolerance:g} "
            f"({a.psnr_vs_torch_db:.2f} dB vs PyTorch); its quality is not ranked"
        )
    return result


def _runtime_summary(result: ModelResult, pixels: dict[str, int], *, forced_tiling: bool) -> None:
    disturbance_summary(result)
    # Images tiled after running out of memory are timed differently: excluded, and said so.
    # With --tile every image is tiled the same way, so all are comparable and kept.
    fallback = [] if forced_tiling else [i.name for i in result.images if i.tiled]
    times = [i.runtime_ms for i in result.images if i.runtime_ms is not None and i.name not in fallback]
    result.runtime_ms = RuntimeStats.from_samples(times) if times else None
    # Time per LR pixel, so that images of different sizes do not count as noise.
    per_pixel = [
        i.runtime_ms / pixels[i.name]
        for i in result.images
        if i.runtime_ms is not None and i.name not in fallback and pixels.get(i.name)
    ]
    if len(per_pixel) >= 3:
        cv = coefficient_of_variation(per_pixel)
        if cv > BUSY_CV:
            result.notes.append(
                f"time per pixel varies by CV {cv:.2f} > {BUSY_CV:.2f} across images: the machine was "
                "probably busy; compare times with care"
            )
    if fallback:
        result.notes.append(
            f"{len(fallback)} image(s) ran out of memory and were tiled ({', '.join(fallback[:5])}); "
            "their times are excluded from runtime_ms"
        )


def disturbance_summary(result: ModelResult) -> None:
    """``disturbed_forwards``, ``timed_forwards`` and ``disturbed_images`` of ``result`` from
    its images' flags, and the row's note when any forward was disturbed."""
    flagged = [i.runtime_disturbed for i in result.images if i.runtime_disturbed is not None]
    if not flagged:
        return
    result.timed_forwards = sum(len(f) for f in flagged)
    result.disturbed_forwards = sum(sum(f) for f in flagged)
    result.disturbed_images = sum(1 for f in flagged if f and all(f))
    per_image = []
    for i in result.images:
        walls = i.runtime_samples_ms or [i.runtime_ms]
        shares = i.runtime_cpu_share
        if shares and all(v is not None for v in shares) and None not in walls:
            per_image.append(statistics.median(v * w for v, w in zip(shares, walls, strict=True)))
    result.cpu_time_ms = statistics.median(per_image) if per_image else None
    if result.disturbed_forwards:
        kept = (
            f"; {result.disturbed_images} image(s) stayed disturbed within the budget and keep a "
            "disturbed time"
            if result.disturbed_images
            else "; every image's time comes from undisturbed forwards"
        )
        why = (
            f"preempted: CPU share below {DISTURBED_SHARE:.0%}"
            if any(i.runtime_cpu_share for i in result.images)
            else "NVML saw another process on the GPU or throttled clocks"
        )
        result.notes.append(
            f"{result.disturbed_forwards} of {result.timed_forwards} timed forwards were disturbed "
            f"({why}) and measured again{kept}"
        )


def _first_forward_ms(warmup: Warmup | None, images: list[ImageResult]) -> float | None:
    # Without warm-up (--warmup 0, --ntire-compat) the first timed forward is the cold one.
    if warmup is not None and warmup.first_forward_ms is not None:
        return warmup.first_forward_ms
    if not images:
        return None
    first = images[0]
    return first.runtime_samples_ms[0] if first.runtime_samples_ms else first.runtime_ms


#: Above this coefficient of variation of the per-image time per LR pixel, a note warns that
#: the machine was probably busy (on a quiet machine it stays within a few %).
BUSY_CV = 0.10


def _mean(values: Any) -> float:
    vals = [float(v) for v in values]
    # Identical SR and HR give +inf PSNR; the mean is then +inf, as in BasicSR.
    return math.inf if any(math.isinf(v) for v in vals) else statistics.fmean(vals)
