"""srbench: an exact, reproducible benchmark harness for efficient super-resolution networks.

The package is laid out by what each room holds:

- :mod:`srbench.data`: dataset layouts and discovery, image I/O, MATLAB bicubic, downloads;
- :mod:`srbench.measure`: quality metrics, runtime, memory, energy, complexity counting;
- :mod:`srbench.execution`: devices, building and loading, the per-model protocol, tiling,
  worker isolation and the orchestrator;
- :mod:`srbench.reporting`: the results schema, environment, tables, reports, plots, claims,
  regression checks and crop grids;
- :mod:`srbench.models`: architectures, the registry and checkpoint loading;
- :mod:`srbench.cli` and :mod:`srbench.commands`: the command line (lazy imports).
"""

__version__ = "0.1.0"
