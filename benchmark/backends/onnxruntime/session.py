"""ONNX Runtime as a measured backend (``srbench run --backend onnxruntime``).

The session runs the file :func:`srbench.backends.onnx_export.export_onnx` writes, cached by
content under ``<cache>/onnx/`` (``$SRBENCH_CACHE_DIR`` or ``~/.cache/srbench``): the file
name carries the sha256 of the model's tensors, its code (the module structure and the
source files of its classes, :func:`srbench.measure.complexity_cache.structure_hash`, as the
complexity cache is keyed), architecture, scale, dtype, opset, the export format and the
srbench/torch/onnx/onnxscript versions, so a second run (or another worker) loads it instead
of exporting again, and any change (an edited ``forward`` included) exports anew.

What is timed: one ``session.run`` call (``run_with_iobinding`` on CUDA/TensorRT) with the
input already where the provider reads it. CPU: the input is a contiguous host tensor
handed over as a zero-copy NumPy view and the output comes back as NumPy, wrapped without
a copy. CUDA/TensorRT: input and output are bound by device pointer to tensors on the GPU
(IO binding), so no host↔device copy happens inside the call; the run synchronises the
device before it returns.

Providers (``--ort-provider``): ``cpu`` (``CPUExecutionProvider``, intra-op threads = torch's
thread count, so the two backends use the same cores), ``cuda`` (``CUDAExecutionProvider``),
``tensorrt`` (``TensorrtExecutionProvider``; one optimisation profile spanning every image
size of the dataset, engines cached beside the ONNX files). ``fp16`` exports an fp16 graph
(and enables TensorRT's fp16 kernels); the CPU provider refuses it.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srbench import __version__
from srbench.backends.base import PlacedModel
from srbench.backends.onnx_export import (
    DEFAULT_OPSET,
    EXPORT_FORMAT,
    INPUT_NAME,
    ExportMetadata,
    export_onnx,
    write_onnx,
)
from srbench.backends.pytorch import to_model_input
from srbench.backends.tiling import DEFAULT_OVERLAP, tiled_forward
from srbench.core.errors import SrbenchError
from srbench.core.extras import require, versions
from srbench.core.paths import cache_root
from srbench.measure.complexity_cache import structure_hash

#: ``--ort-provider`` values and the ONNX Runtime execution providers they name.
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}
#: Providers that run on a CUDA device (inputs bound by device pointer).
GPU_PROVIDERS = frozenset({"cuda", "tensorrt"})
#: dtypes each provider accepts.
PROVIDER_DTYPES = {"cpu": ("fp32",), "cuda": ("fp32", "fp16"), "tensorrt": ("fp32", "fp16")}

_PURPOSE = "--backend onnxruntime"


def onnx_cache_dir() -> Path:
    """``<cache>/onnx``: where exported files are kept, keyed by content."""
    return cache_root() / "onnx"


def state_sha256(model: nn.Module) -> str:
    """sha256 over the model's state dict: each tensor's name, dtype, shape and bytes, in order."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def cache_key(model: nn.Module, meta: ExportMetadata, opset: int) -> str:
    """The content hash naming a cached export (see the module docstring)."""
    facts = {
        "format": EXPORT_FORMAT,
        "opset": opset,
        "arch": meta.arch,
        "scale": meta.scale,
        "dtype": meta.dtype,
        "input_range": meta.input_range,
        "weights_sha256": meta.weights_sha256,
        "state_sha256": state_sha256(model),
        # The graph is traced from the code: an edited forward is another export.
        "code": structure_hash(model),
        "srbench": __version__,
        "torch": torch.__version__,
        **{k: v for k, v in versions().items() if k != "onnxruntime"},
    }
    blob = json.dumps(facts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class CachedExport:
    """An exported file: ``path``, its bytes' ``sha256``, and whether it came from the cache."""

    path: Path
    sha256: str
    cached: bool


def cached_export(model: nn.Module, meta: ExportMetadata, *, opset: int = DEFAULT_OPSET) -> CachedExport:
    """The ONNX file of ``model`` under :func:`onnx_cache_dir`, exported only when absent."""
    key = cache_key(model, meta, opset)
    path = onnx_cache_dir() / f"{meta.arch}-x{meta.scale}-{meta.dtype}-{key[:24]}.onnx"
    if path.is_file():
        data = path.read_bytes()
        return CachedExport(path, hashlib.sha256(data).hexdigest(), cached=True)
    data = export_onnx(model, meta, opset=opset, advice="measure this model with --backend torch")
    try:
        write_onnx(path, data)
    except SrbenchError as exc:
        raise SrbenchError(f"{exc}; set SRBENCH_CACHE_DIR to a writable folder") from None
    return CachedExport(path, hashlib.sha256(data).hexdigest(), cached=False)


def check_provider(provider: str, dtype: str) -> None:
    """Refuse an unknown provider or a dtype it cannot run (before any model is built)."""
    if provider not in PROVIDERS:
        raise SrbenchError(f"--ort-provider {provider!r} is not one of {', '.join(PROVIDERS)}")
    if dtype not in PROVIDER_DTYPES[provider]:
        allowed = ", ".join(PROVIDER_DTYPES[provider])
        raise SrbenchError(
            f"--dtype {dtype} with --ort-provider {provider}: that provider runs {allowed}; "
            "use --dtype fp32 (fp16 needs --ort-provider cuda or tensorrt)"
        )


def provider_device(provider: str) -> torch.device:
    """The torch device the provider's inputs live on (``cuda`` for the GPU providers)."""
    return torch.device("cuda" if provider in GPU_PROVIDERS else "cpu")


class OrtBackend:
    """An ONNX Runtime session used like a model: ``backend(x) -> y`` on torch tensors.

    ``x``: ``(1, 3, H, W)`` float tensor (the export's dtype), contiguous, on
    :attr:`device`; returns ``(1, 3, sH, sW)`` on the same device. See the module
    docstring for what one call does (and so what the runner times).
    """

    def __init__(
        self,
        path: Path,
        *,
        provider: str = "cpu",
        dtype: str = "fp32",
        scale: int,
        threads: int | None = None,
        max_hw: tuple[int, int] | None = None,
    ) -> None:
        ort = require("onnxruntime", purpose=_PURPOSE)
        check_provider(provider, dtype)
        ep = PROVIDERS[provider]
        available = ort.get_available_providers()
        if ep not in available:
            raise SrbenchError(
                f"--ort-provider {provider}: this onnxruntime ({ort.__version__}) offers "
                f"{', '.join(available)}; install onnxruntime-gpu for cuda/tensorrt or use --ort-provider cpu"
            )
        self.provider = provider
        self.dtype = dtype
        self.scale = scale
        self.device = provider_device(provider)
        self._np_dtype = np.float16 if dtype == "fp16" else np.float32
        self._torch_dtype = torch.float16 if dtype == "fp16" else torch.float32
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: ORT's warnings go to stderr otherwise
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads or torch.get_num_threads()
        self.threads = options.intra_op_num_threads
        providers: list[Any] = [(ep, self._provider_options(path, max_hw))]
        if ep != PROVIDERS["cpu"]:
            providers.append(PROVIDERS["cpu"])  # ops a GPU provider lacks fall back, as ORT does
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except Exception as exc:
            raise SrbenchError(f"onnxruntime cannot load {path} on {ep} ({exc})") from None
        # A file srbench did not write names its input and output as it likes.
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        #: The provider ORT actually put first (it drops one it cannot initialise).
        self.provider_name = self.session.get_providers()[0]
        if self.provider_name != ep:
            raise SrbenchError(
                f"--ort-provider {provider}: onnxruntime could not initialise {ep} "
                f"(it fell back to {self.provider_name}); check the CUDA/TensorRT install"
            )

    def _provider_options(self, path: Path, max_hw: tuple[int, int] | None) -> dict[str, Any]:
        if self.provider == "cpu":
            return {}
        index = torch.cuda.current_device()
        opts: dict[str, Any] = {"device_id": index}
        if self.provider == "tensorrt":
            opts.update(
                {
                    "trt_fp16_enable": self.dtype == "fp16",
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": str(path.parent / "trt"),
                }
            )
            if max_hw is not None:
                # One profile for every image of the dataset: no engine rebuild while timing.
                h, w = max_hw
                opts["trt_profile_min_shapes"] = f"{INPUT_NAME}:1x3x2x2"
                opts["trt_profile_opt_shapes"] = f"{INPUT_NAME}:1x3x{h}x{w}"
                opts["trt_profile_max_shapes"] = f"{INPUT_NAME}:1x3x{h}x{w}"
        return opts

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()  # a no-op for the protocol's inputs; tiles may be strided views
        if self.device.type == "cpu":
            out = self.session.run([self.output_name], {self.input_name: x.numpy()})[0]
            return torch.from_numpy(out)
        return self._run_bound(x)

    def _run_bound(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        out = torch.empty((n, c, h * self.scale, w * self.scale), dtype=self._torch_dtype, device=x.device)
        index = x.device.index if x.device.index is not None else torch.cuda.current_device()
        binding = self.session.io_binding()
        binding.bind_input(
            name=self.input_name,
            device_type="cuda",
            device_id=index,
            element_type=self._np_dtype,
            shape=tuple(x.shape),
            buffer_ptr=x.data_ptr(),
        )
        binding.bind_output(
            name=self.output_name,
            device_type="cuda",
            device_id=index,
            element_type=self._np_dtype,
            shape=tuple(out.shape),
            buffer_ptr=out.data_ptr(),
        )
        self.session.run_with_iobinding(binding)
        return out


# --------------------------------------------------------------------------- in a run


@dataclass(frozen=True)
class Deployment:
    """The file a run's backend loads: the cache entry, opset and seconds spent.

    ``source`` is ``export`` (srbench exported the PyTorch model) or ``file`` (the user's
    ONNX file, measured as it is); ``static_hw`` is the file's fixed input size, if any.
    ``precision`` is the variant's (``fp32`` for the file as exported or given), with its
    record (:class:`srbench.backends.onnxruntime.precision.Variant`) under ``variant``.
    """

    export: CachedExport
    opset: int
    seconds: float
    source: str = "export"
    static_hw: tuple[int, int] | None = None
    precision: str = "fp32"
    variant: Any = None
    #: The fp32 file the variant was made from (its agreement reference), when there is one.
    base: CachedExport | None = None
    #: A user's file: the dtype its input takes (``fp16`` or ``fp32``), whatever ``--dtype`` says.
    input_dtype: str | None = None

    def describe(self) -> dict[str, Any]:
        """``ModelResult.deployed``: format, file name, sha256, opset, cached, source, size;
        the static input size and the precision variant's record when they apply."""
        out: dict[str, Any] = {
            "format": "onnx",
            "file": self.export.path.name,
            "sha256": self.export.sha256,
            "opset": self.opset,
            "cached": self.export.cached,
            "source": self.source,
            "size_bytes": self.export.path.stat().st_size if self.export.path.is_file() else None,
        }
        if self.static_hw is not None:
            out["static_input_hw"] = list(self.static_hw)
        if self.variant is not None:
            out["precision"] = self.variant.describe()
        return out


def deploy_file(path: Path, sha256: str, *, opset: int, static_hw: tuple[int, int] | None) -> Deployment:
    """A user's ONNX file as the run's deployment: loaded as it is, nothing exported."""
    onnx = require("onnx", purpose=_PURPOSE)
    require("onnxruntime", purpose=_PURPOSE)
    elem = onnx.load(str(path), load_external_data=False).graph.input[0].type.tensor_type.elem_type
    return Deployment(
        CachedExport(path, sha256, cached=True),
        opset,
        0.0,
        source="file",
        static_hw=static_hw,
        input_dtype="fp16" if elem == onnx.TensorProto.FLOAT16 else "fp32",
    )


def deploy(model: nn.Module, meta: ExportMetadata, *, opset: int = DEFAULT_OPSET) -> Deployment:
    """Export ``model`` (or find it in the cache) for a run; not part of any measured figure."""
    require("onnxruntime", purpose=_PURPOSE)
    t0 = time.perf_counter()
    export = cached_export(model, meta, opset=opset)
    return Deployment(export, opset, time.perf_counter() - t0)


def max_lr_hw(lr_shapes: tuple[tuple[int, ...], ...]) -> tuple[int, int]:
    """The largest LR height and width among ``lr_shapes`` ((H, W, 3) each)."""
    return max([2, *(int(s[0]) for s in lr_shapes)]), max([2, *(int(s[1]) for s in lr_shapes)])


@dataclass
class OrtModel(PlacedModel):
    """A :class:`~srbench.backends.base.PlacedModel` over an :class:`OrtBackend` session.

    With ``static_hw`` (a file whose input is fixed at ``1x3xHxW``) every forward goes
    through :func:`static_forward`.
    """

    session: OrtBackend
    input_range: float
    device: torch.device
    dtype: torch.dtype
    static_hw: tuple[int, int] | None = None

    @property
    def provider_name(self) -> str:
        return self.session.provider_name

    def to_input(self, lr: np.ndarray) -> torch.Tensor:
        return to_model_input(lr, self.input_range, self.device, self.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.static_hw is None:
            return self.session(x)
        return static_forward(self.session, x, self.static_hw, self.session.scale)


def static_overlap(static_hw: tuple[int, int]) -> int:
    """The tiler's overlap for a static input: the default, or a quarter of its smaller side
    when that is too small for the default (the overlap must stay below the tile)."""

    return min(DEFAULT_OVERLAP, min(static_hw) // 4)


def static_forward(run: Any, x: torch.Tensor, static_hw: tuple[int, int], scale: int) -> torch.Tensor:
    """``x`` (1, 3, h, w) upscaled by a network that only takes ``(1, 3, H, W)`` = ``static_hw``.

    The image goes through :func:`srbench.backends.tiling.tiled_forward` with square tiles of
    the smaller fixed side and :func:`static_overlap`; a window smaller than ``H×W`` (an image
    side shorter than the tile) is padded on its bottom/right by repeating its edge pixels to
    ``H×W`` and the extra output is cut off. An input of exactly ``H×W`` runs as it is.
    """

    fh, fw = static_hw

    def padded(window: torch.Tensor) -> torch.Tensor:
        h, w = int(window.shape[2]), int(window.shape[3])
        if (h, w) == (fh, fw):
            return run(window)
        pad = torch.nn.functional.pad(window.float(), (0, fw - w, 0, fh - h), mode="replicate")
        out = run(pad.to(window.dtype).contiguous())
        return out[..., : h * scale, : w * scale]

    if tuple(x.shape[2:]) == (fh, fw):
        return run(x)
    return tiled_forward(padded, x, scale=scale, tile=min(fh, fw), overlap=static_overlap(static_hw))


def place(
    deployment: Deployment,
    *,
    provider: str,
    dtype: str,
    scale: int,
    input_range: float,
    device: torch.device,
    max_hw: tuple[int, int] | None = None,
) -> OrtModel:
    """The session on ``provider`` as a backend the protocol times (``dtype``: the file's
    input type)."""
    session = OrtBackend(deployment.export.path, provider=provider, dtype=dtype, scale=scale, max_hw=max_hw)
    torch_dtype = torch.float16 if dtype == "fp16" else torch.float32
    return OrtModel(session, input_range, device, torch_dtype, static_hw=deployment.static_hw)


MIB = 2**20


@dataclass
class DeviceUsedMemory:
    """Memory of an ONNX Runtime session on a GPU (``memory_kind: ort_cuda_device_used_delta``).

    ONNX Runtime's CUDA arena is invisible to PyTorch's allocator counters. This reads the
    device's used memory (``cudaMemGetInfo``: total − free, device-wide) when the meter
    starts (before the session is created) and after warm-up (before any metric runs); ORT's arena never
    returns memory, so the difference is the session's peak reservation: weights, arena
    peak and provider workspaces. Meaningful on a GPU no other process is using.
    """

    device: torch.device
    kind: str = "ort_cuda_device_used_delta"
    _used0: int = 0

    def _used(self) -> int:
        torch.cuda.synchronize(self.device)
        free, total = torch.cuda.mem_get_info(self.device)
        return total - free

    def start(self) -> None:
        """Record the device's used bytes."""
        self._used0 = self._used()

    def stop(self) -> float | None:
        """MB (2**20 bytes) the device gained since :meth:`start`."""
        return max(0, self._used() - self._used0) / MIB
