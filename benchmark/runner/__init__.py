"""Runs: the configuration, the per-model protocol, worker isolation, the orchestrator and sweeps,
their launchers (inline, process, Ray), and the upscale and export jobs."""
