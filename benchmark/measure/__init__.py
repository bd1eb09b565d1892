"""Measurements: quality metrics, runtime, memory, energy and complexity counting (one file each)."""
