"""Records the backends produce that the results schema stores, kept free of torch so that
reading a results file (``srbench score``, ``report``) imports no heavy library."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class BackendAgreement:
    """How far a deployment backend's outputs are from PyTorch's on the first images.

    Attributes:
        reference: what the backend was compared with (``"torch fp32 on cpu"``).
        images: the images compared (the dataset's first ones).
        max_abs_diff: max |backend − PyTorch| over every value of the float outputs clamped
            to [0, 1] (before quantisation), in [0, 1] output units.
        max_abs_diff_u8: the same on the uint8 outputs, in grey levels (0-255).
        psnr_vs_torch_db: PSNR between the two uint8 outputs (RGB, all pixels, no border
            crop, peak 255), the worst (lowest) over ``images``; ``inf`` when identical.
        tolerance: the largest ``max_abs_diff`` accepted for this dtype.
        within_tolerance: ``max_abs_diff <= tolerance``. A row outside it keeps its figures
            in the JSON but is not ranked (tables show no quality for it, with a footnote).
    """

    reference: str
    images: list[str]
    max_abs_diff: float
    max_abs_diff_u8: int
    psnr_vs_torch_db: float
    tolerance: float
    within_tolerance: bool
