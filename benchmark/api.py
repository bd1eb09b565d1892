"""srbench's Python API: what ``import srbench`` offers a script (docs/api.md).

``srbench.run``, ``srbench.RunConfig``, ``srbench.load_results``, ``srbench.profile`` and
``srbench.register_model`` are this module's names, reached lazily through the package
root's ``__getattr__`` so that ``srbench --help`` still imports no torch. Each is the same
library call the command line makes: ``run`` is ``srbench run``, ``profile`` is ``srbench
profile --json``; results are the records of :mod:`srbench.results.schema`.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from srbench.commands.profile import profile_specs
from srbench.core.errors import SrbenchError
from srbench.models.registry import register_model
from srbench.models.specs import parse_model_specs
from srbench.results.config import RunConfig
from srbench.results.schema import RunResult, load_results
from srbench.runner.orchestrator import default_output_dir, run_benchmark

__all__ = ["RunConfig", "RunResult", "load_results", "profile", "register_model", "run"]


def run(
    models: str | Sequence[str] | None = None,
    data: str | None = None,
    *,
    output: str | Path | None = None,
    config: RunConfig | None = None,
    quiet: bool = True,
    **options: Any,
) -> RunResult:
    """Measure ``models`` on ``data`` as ``srbench run`` does and write the results files.

    Args:
        models: registry names, checkpoint paths, ``FILE.py:Class``...: a list or a
            comma-separated string (``"span,rlfn"``), as ``--models``.
        data: a dataset folder, ``"sample"`` or ``"sample-mini"``; None: the sample set.
        output: results folder (results.json/.csv/.md, images.csv); None: a new folder
            under ``srbench-runs/``.
        config: a whole :class:`RunConfig` (``models``/``data``/``options`` then override
            its fields); None: the command line's defaults.
        quiet: no progress output (False: one line per model and per N images on stderr).
        **options: any :class:`RunConfig` field, e.g. ``device="cpu"``, ``dtype="bf16"``,
            ``repeat=3``, ``isolate=False`` (measure in this process).

    Returns:
        the :class:`RunResult` (``.models``: one ``ModelResult`` per row; figures defined
        in docs/metrics.md), also written to ``output``.

    Raises:
        SrbenchError: bad input (unknown model, missing data, unknown option), one line.
    """
    base = config if config is not None else RunConfig()
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise SrbenchError(
            f"srbench.run: unknown option(s) {', '.join(unknown)}; see srbench.RunConfig's fields"
        )
    changes = dict(options)
    if models is not None:
        changes["models"] = (
            [m.strip() for m in models.split(",")] if isinstance(models, str) else list(models)
        )
    if data is not None:
        changes["data"] = data
    cfg = dataclasses.replace(base, **changes)
    if not cfg.models:
        raise SrbenchError("srbench.run: name the models, e.g. srbench.run(['span'], 'sample-mini')")
    out_dir = Path(output) if output is not None else default_output_dir()
    console = Console(file=io.StringIO()) if quiet else Console(stderr=True)
    result, interrupted = run_benchmark(cfg, out_dir, console=console, progress="none" if quiet else "auto")
    if interrupted:
        raise KeyboardInterrupt
    return result


def profile(
    models: str | Sequence[str],
    *,
    scale: int = 4,
    input_shape: Sequence[int] = (1, 3, 256, 256),
    recount: bool = False,
) -> list[dict[str, Any]]:
    """Complexity of each model at ``input_shape`` (N, C, H, W), as ``srbench profile --json``:
    one dict per model with ``params``, ``flops`` (fvcore MACs), ``activations``, ``convs``,
    the cross-checks (``flops_lower_bound``, ``flops_thop``, ``flops_dispatch``) and
    ``unsupported_ops`` (definitions: docs/metrics.md). No weights are needed or downloaded."""
    tokens = models.split(",") if isinstance(models, str) else list(models)
    specs = parse_model_specs(",".join(t.strip() for t in tokens), {}, scale=scale)
    return profile_specs(specs, scale=scale, input_shape=list(input_shape), recount=recount)
