"""srbench: an exact, reproducible benchmark harness for efficient super-resolution networks.

The package is laid out by what each room holds; a room imports only rooms below it
(``tests/test_layout.py`` enforces the order)::

    core < data, measure, models < backends < results < run < ntire, reporting < commands, cli

- :mod:`srbench.core`: errors, atomic files, consoles, paths, optional extras, downloads;
- :mod:`srbench.data`: dataset layouts and discovery, image I/O, MATLAB bicubic, caches;
- :mod:`srbench.measure`: quality metrics, runtime, memory, energy, complexity counting;
- :mod:`srbench.models`: architectures, the registry, model specs, weights and loading;
- :mod:`srbench.backends`: PyTorch, ONNX Runtime and the browser, devices, tiling, export;
- :mod:`srbench.results`: record types, results files, the environment block;
- :mod:`srbench.run`: configuration, the per-model protocol, workers, orchestrator, sweeps;
- :mod:`srbench.ntire`: the NTIRE challenge editions, score and protocol;
- :mod:`srbench.reporting`: tables, reports, plots, claims, regression checks, crop grids;
- :mod:`srbench.cli` and :mod:`srbench.commands`: the command line (lazy imports);
- :mod:`srbench.selfcheck`: the harness measuring itself (bench, GPU check).
"""

__version__ = "0.1.0"
