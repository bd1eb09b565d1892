"""The run configuration, in four sections, and what ``config_hash`` covers.

Every field of :class:`RunConfig` belongs to exactly one section, declared beside the field
(``metadata=PROTOCOL``, ...):

``protocol``
    how a model is measured (scale, device, warm-up, repeat, dtype, tiling, ...);
``data``
    what it is measured on (``--data``, ``--layout``);
``execution``
    what runs and how the run is carried out (the model list, their checkpoints, offline,
    worker isolation, timeouts);
``output``
    where results go and how they are named (saved images, ``--label``).

The **hashed part** is, by construction, the ``protocol`` and ``data`` sections
(:data:`HASHED_SECTIONS`) together with the dataset's description: two runs with the same
``config_hash`` measured models the same way on the same images, so ``--resume`` may keep
the models the first one finished. A new field is hashed or not by the section it is
declared in; there is no separate list of key names. A key an older file lacks takes its
default. ``results.json`` records ``config`` as one flat object (each key once; the sections
are this module's), so every reader of older files keeps working.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any

from srbench.backends.registry import get_backend
from srbench.backends.tiling import DEFAULT_OVERLAP
from srbench.measure.counting import NTIRE_INPUT_SHAPE

#: Default warm-up forwards (in all; at least one per distinct LR shape, the rest on the
#: first image). The first forward on CPU pays oneDNN primitive creation and allocator
#: growth (several times a steady forward); on CUDA, context, cuDNN heuristics and kernel
#: loading; later first-of-shape calls pay only their shape's part. Three forwards on one
#: shape reach steady state on every model we ship; with more shapes than that, each gets
#: its one call (the first image's is then the cold one). ``--ntire-compat`` uses 0, as
#: the challenge did.
DEFAULT_WARMUP = 3
#: Default warm-up with ``--backend browser``: V8 compiles WASM lazily and tiers it up while
#: it runs, so after 2 warm-ups a 64×64 SPAN forward in ORT-Web still took 2-5× its steady
#: time on the CI machine; 15 reach the steady state there.
BROWSER_WARMUP = 15


#: Default ``--threads``: one intra-op thread (as ``torch.utils.benchmark.Timer``). On a
#: shared 2-core machine (load average 7-11), interleaved runs of rlfn and span on the
#: sample set gave stable medians with one thread and 2-10x slower, erratic ones with two
#: (README "Runtime"; issue 25's figures). ``--threads all`` gives deployment-like figures.
DEFAULT_THREADS: int | str = 1
#: What a results file written before ``--threads`` existed ran with: torch's default,
#: every core (:func:`hashed_config` fills the key with this, not with today's default).
LEGACY_THREADS = "all"


#: The sections, in the order docs/results-schema.md lists them.
SECTIONS = ("protocol", "data", "execution", "output")
#: The sections ``config_hash`` covers (see the module docstring).
HASHED_SECTIONS = ("protocol", "data")


def _in(section: str) -> dict[str, str]:
    """Field metadata declaring a :class:`RunConfig` field's section (one of :data:`SECTIONS`)."""
    assert section in SECTIONS, section
    return {"section": section}


PROTOCOL, DATA, EXECUTION, OUTPUT = (_in(s) for s in SECTIONS)


@dataclass
class RunConfig:
    """Everything that defines a run (recorded as ``config`` in results.json)."""

    # --- protocol: how each model is measured
    scale: int = field(default=4, metadata=PROTOCOL)
    device: str = field(default="auto", metadata=PROTOCOL)
    warmup: int = field(default=DEFAULT_WARMUP, metadata=PROTOCOL)
    repeat: int = field(default=1, metadata=PROTOCOL)
    profile_input: list[int] = field(default_factory=lambda: list(NTIRE_INPUT_SHAPE), metadata=PROTOCOL)
    ntire_compat: bool = field(default=False, metadata=PROTOCOL)
    dtype: str = field(default="fp32", metadata=PROTOCOL)
    channels_last: bool = field(default=False, metadata=PROTOCOL)
    compile: bool = field(default=False, metadata=PROTOCOL)
    cudnn_benchmark: bool = field(default=False, metadata=PROTOCOL)
    tf32: str | None = field(default=None, metadata=PROTOCOL)
    seed: int = field(default=0, metadata=PROTOCOL)
    deterministic: bool = field(default=False, metadata=PROTOCOL)
    tile: int | None = field(default=None, metadata=PROTOCOL)
    tile_overlap: int = field(default=DEFAULT_OVERLAP, metadata=PROTOCOL)
    #: What runs the network: ``torch``, ``onnxruntime`` or ``browser`` (:mod:`srbench.backends`).
    backend: str = field(default="torch", metadata=PROTOCOL)
    #: ONNX Runtime execution provider (``--backend onnxruntime`` only).
    ort_provider: str = field(default="cpu", metadata=PROTOCOL)
    #: ONNX Runtime Web execution provider (``--backend browser`` only).
    browser_provider: str = field(default="wasm", metadata=PROTOCOL)
    #: WASM threads in the browser (``--backend browser``); None: torch's thread count.
    browser_threads: int | None = field(default=None, metadata=PROTOCOL)
    #: ``--threads N|all``: intra-op CPU threads of torch and ONNX Runtime (the browser's WASM
    #: threads follow unless ``browser_threads``); ``"all"``: the cores this process may run on.
    threads: int | str = field(default=DEFAULT_THREADS, metadata=PROTOCOL)
    # --- data: what it is measured on (see srbench.commands.options.add_dataset_options)
    data: str | None = field(default=None, metadata=DATA)
    layout: str | None = field(default=None, metadata=DATA)
    hr: str | None = field(default=None, metadata=DATA)
    lr: str | None = field(default=None, metadata=DATA)
    split: str = field(default="valid", metadata=DATA)
    degradation: str = field(default="bicubic", metadata=DATA)
    allow_16bit: bool = field(default=False, metadata=DATA)
    # --- execution: which models (and what defines each row), how the run is carried out.
    # Per-model entries (weights, model_args, input_ranges, weights_keys) are compared row by row on --resume.
    models: list[str] = field(default_factory=list, metadata=EXECUTION)
    weights: dict[str, str] = field(default_factory=dict, metadata=EXECUTION)
    #: ``--model-args NAME=JSON``: constructor keyword arguments per row (see specs.py).
    model_args: dict[str, dict[str, Any]] = field(default_factory=dict, metadata=EXECUTION)
    #: ``--input-range NAME=1|255``: the value range a row's network takes and returns.
    input_ranges: dict[str, float] = field(default_factory=dict, metadata=EXECUTION)
    #: ``--weights-key [NAME=]KEY``: the checkpoint key to load per row (``*``: every row).
    weights_keys: dict[str, str] = field(default_factory=dict, metadata=EXECUTION)
    offline: bool = field(default=False, metadata=EXECUTION)
    isolate: bool = field(default=True, metadata=EXECUTION)
    model_timeout: float | None = field(default=None, metadata=EXECUTION)
    #: ``--precision``: the ONNX Runtime precision variants measured per model, ``fp32`` first
    #: (srbench.backends.onnxruntime.precision). Rows are named per precision (``span-int8``),
    #: so --resume matches them by name, as it does per-model entries.
    precisions: list[str] = field(default_factory=lambda: ["fp32"], metadata=EXECUTION)
    #: ``--calibration PATH``: the int8 calibration set (None: the documented default set); hashed,
    #: since it changes what an int8 row measures.
    calibration: str | None = field(default=None, metadata=PROTOCOL)
    #: Count complexity afresh instead of reading the complexity cache (never changes a number).
    recount: bool = field(default=False, metadata=EXECUTION)
    # --- output: where results go and how they are named
    save_images: str | None = field(default=None, metadata=OUTPUT)
    #: The run's name in reports, plots and tables (``--label``); None: named by device/dtype.
    label: str | None = field(default=None, metadata=OUTPUT)

    def row_name(self, model: str) -> str:
        """The results row of ``model`` under this backend: ``model`` for torch, else
        ``model@onnxruntime`` (the backend's default provider) or ``model@onnxruntime-<provider>``,
        so rows of several backends of one model sit side by side in tables, reports and checks
        (:meth:`srbench.backends.base.Backend.row_suffix`)."""
        suffix = get_backend(self.backend).row_suffix(self.to_dict())
        return model if suffix is None else f"{model}@{suffix}"

    def to_dict(self) -> dict[str, Any]:
        """JSON form: one flat object, each field once (``results.json`` → ``config``)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored (files from newer versions);
        keys whose absence means something else than today's default take :data:`ABSENT`."""
        known = {f.name for f in fields(cls)}
        return cls(**{**ABSENT, **{k: v for k, v in d.items() if k in known}})


#: Keys a results file written before them lacks, with what that file ran with.
ABSENT: dict[str, Any] = {"threads": LEGACY_THREADS}


def _plain(value: Any) -> Any:
    # Copies, so that a RunResult's dict never aliases a live config's lists.
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


#: Field name → section, from the declarations above.
FIELD_SECTIONS: dict[str, str] = {f.name: f.metadata["section"] for f in fields(RunConfig)}


def section_of(key: str) -> str:
    """The section of ``key``; keys :class:`RunConfig` does not know (written by another
    version of srbench) count as ``protocol``: hashing too much only refuses a resume."""
    return FIELD_SECTIONS.get(key, "protocol")


def hashed_keys() -> list[str]:
    """The config keys ``config_hash`` covers, in declaration order."""
    return [k for k, s in FIELD_SECTIONS.items() if s in HASHED_SECTIONS]


def hashed_part(config: dict[str, Any]) -> dict[str, Any]:
    """The entries of a ``config`` dict (as in results.json) that ``config_hash`` covers."""
    return {k: v for k, v in config.items() if section_of(k) in HASHED_SECTIONS}


def hashed_config(config: dict[str, Any]) -> dict[str, Any]:
    """:func:`hashed_part` of ``config`` with every key it lacks (a file written before that
    option existed) at its default, or at what such files ran with (:data:`ABSENT`): what
    ``config_hash`` hashes and resumes compare."""
    return hashed_part({**RunConfig().to_dict(), **ABSENT, **config})


def config_hash(config: dict[str, Any], dataset: dict[str, Any]) -> str:
    """sha256 (first 16 hex digits) of the canonical JSON of the hashed part of ``config``
    (:func:`hashed_part`) and of ``dataset`` (the dataset's description in results.json).

    A key ``config`` lacks (a file written before that option existed) takes its default,
    so an older run and a new one with the same settings share a hash.
    """
    blob = json.dumps(
        {"config": hashed_config(config), "dataset": dataset}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
