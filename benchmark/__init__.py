"""srbench.benchmark: metrics, resizing, data, counting, timing, running and reporting."""
