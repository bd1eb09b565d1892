"""srbench: an exact, reproducible benchmark harness for efficient super-resolution networks."""

__version__ = "0.1.0"
