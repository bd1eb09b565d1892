"""srbench: an exact, reproducible benchmark harness for efficient super-resolution networks.

The package is laid out by what each room holds; a room imports only rooms below it
(``tests/test_layout.py`` enforces the order)::

    core < data, measure, models < backends < results < runner < ntire, reporting < commands, cli

- :mod:`srbench.core`: errors, atomic files, consoles, paths, optional extras, downloads;
- :mod:`srbench.data`: dataset layouts and discovery, image I/O, MATLAB bicubic, caches;
- :mod:`srbench.measure`: quality metrics, runtime, memory, energy, complexity counting;
- :mod:`srbench.models`: architectures, the registry, model specs, weights and loading;
- :mod:`srbench.backends`: PyTorch, ONNX Runtime and the browser, devices, tiling, export;
- :mod:`srbench.results`: record types, results files, the environment block;
- :mod:`srbench.runner`: configuration, the per-model protocol, workers, orchestrator, sweeps;
- :mod:`srbench.ntire`: the NTIRE challenge editions, score and protocol;
- :mod:`srbench.reporting`: tables, reports, plots, claims, regression checks, crop grids;
- :mod:`srbench.cli` and :mod:`srbench.commands`: the command line (lazy imports);
- :mod:`srbench.selfcheck`: the harness measuring itself (bench, GPU check);
- :mod:`srbench.api`: the Python API below (docs/api.md).

The Python API: ``srbench.run(models, data, ...)``, ``srbench.RunConfig``,
``srbench.load_results(path)``, ``srbench.profile(models, ...)`` and
``srbench.register_model``. They are imported on first use (the module ``__getattr__``
below), so ``import srbench`` and ``srbench --help`` stay free of torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

#: The public API, each name from :mod:`srbench.api` (imported on first access).
API = ("RunConfig", "RunResult", "load_results", "profile", "register_model", "run")
__all__ = ["__version__", *API]


def __getattr__(name: str) -> Any:
    # The one upward import of the package root (tests/test_layout.py, ROOT_API): the API
    # sits above every room, and loading it lazily keeps `srbench --help` light.
    if name in API:
        import srbench.api

        return getattr(srbench.api, name)
    raise AttributeError(f"module 'srbench' has no attribute {name!r}")
