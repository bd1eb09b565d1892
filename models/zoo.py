"""The shipped model zoo: every registered builder, with its official weights as data.

Architecture code lives in one module per architecture; this module only wires builders,
scales, input ranges and checkpoints together. Importing it registers everything.
"""

from __future__ import annotations

# --- convolutional models (RLFN family, SPAN family, SPAN-CA, SPAN-F, EFDN, bicubic) ---

# --- attention models (FDAT, GRLA) ---
