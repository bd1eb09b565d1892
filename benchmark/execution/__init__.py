"""Execution: devices, building and loading a model for a run, the per-model protocol, tiling,
worker isolation and the orchestrator that runs many models."""
