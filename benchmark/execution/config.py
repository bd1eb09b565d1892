"""The run configuration: what defines a run's protocol (recorded as ``config`` in results.json)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from srbench.execution.tiling import DEFAULT_OVERLAP
from srbench.measure.counting import NTIRE_INPUT_SHAPE

#: Default warm-up forwards. The first forward on CPU pays oneDNN primitive creation and
#: allocator growth (several times a steady forward); on CUDA, context, cuDNN heuristics
#: and kernel loading. Three forwards on the first image's shape reach steady state on
#: every model we ship; ``--ntire-compat`` uses 0, as the challenge did.
DEFAULT_WARMUP = 3
#: Default warm-up with ``--backend browser``: V8 compiles WASM lazily and tiers it up while
#: it runs, so after 2 warm-ups a 64×64 SPAN forward in ORT-Web still took 2-5× its steady
#: time on the CI machine; 15 reach the steady state there.
BROWSER_WARMUP = 15

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

#: ``--backend`` values: PyTorch eager (the default) or the ONNX export run by ONNX Runtime.
BACKENDS = ("torch", "onnxruntime", "browser")
#: ``--ort-provider`` values (see :mod:`srbench.deploy.ort`).
ORT_PROVIDERS = ("cpu", "cuda", "tensorrt")
#: ``--browser-provider`` values: ONNX Runtime Web's execution providers (:mod:`srbench.web`).
BROWSER_PROVIDERS = ("wasm", "webgpu", "webgl")


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
    #: ``--model-args NAME=JSON``: constructor keyword arguments per row (see specs.py).
    model_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``--input-range NAME=1|255``: the value range a row's network takes and returns.
    input_ranges: dict[str, float] = field(default_factory=dict)
    offline: bool = False
    tile: int | None = None
    tile_overlap: int = DEFAULT_OVERLAP
    isolate: bool = True
    model_timeout: float | None = None
    save_images: str | None = None
    #: Count complexity afresh instead of reading the complexity cache (never changes a number).
    recount: bool = False
    #: The run's name in reports, plots and tables (``--label``); None: named by device/dtype.
    label: str | None = None
    # Dataset options beyond --data/--layout (see srbench.commands.options.add_dataset_options).
    # Hashed only when set (results.NEW_CONFIG_DEFAULTS), so earlier runs keep their hash.
    hr: str | None = None
    lr: str | None = None
    split: str = "valid"
    degradation: str = "bicubic"
    allow_16bit: bool = False
    #: What runs the network: ``torch`` or ``onnxruntime`` (:mod:`srbench.deploy.ort`).
    backend: str = "torch"
    #: ONNX Runtime execution provider (``--backend onnxruntime`` only).
    ort_provider: str = "cpu"
    #: ONNX Runtime Web execution provider (``--backend browser`` only).
    browser_provider: str = "wasm"
    #: WASM threads in the browser (``--backend browser``); None: torch's thread count.
    browser_threads: int | None = None

    def row_name(self, model: str) -> str:
        """The results row of ``model`` under this backend: ``model`` for torch, else
        ``model@onnxruntime`` (CPU provider) or ``model@onnxruntime-<provider>``, so rows
        of several backends of one model sit side by side in tables, reports and checks."""
        if self.backend == "torch":
            return model
        if self.backend == "browser":
            provider, default = self.browser_provider, "wasm"
        else:
            provider, default = self.ort_provider, "cpu"
        suffix = self.backend if provider == default else f"{self.backend}-{provider}"
        return f"{model}@{suffix}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)
