"""The harness measuring itself: ``python -m srbench.selfcheck.bench`` and the GPU check. Not library code."""
