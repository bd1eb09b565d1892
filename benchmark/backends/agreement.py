"""Agreement of a deployment backend with PyTorch (``backend_agreement`` in results.json).

On the dataset's first :data:`AGREEMENT_IMAGES` images, the backend's output and the PyTorch
model's fp32 output (same weights, on the run's device) are compared twice: as floats
clamped to [0, 1] (``max_abs_diff``, the figure the tolerance applies to: a difference far
below one grey level still flips a few roundings, so uint8 differences alone cannot hold a
1e-3 tolerance) and as the uint8 images srbench scores (``max_abs_diff_u8``,
``psnr_vs_torch_db``). See :class:`srbench.results.schema.BackendAgreement`.

Tolerances (``max_abs_diff``, [0, 1] units): fp32 :data:`FP32_TOLERANCE`: ONNX Runtime's
CPU kernels differ from PyTorch's by 2e-4 to 3e-4 at most on the shipped models, as much as
PyTorch fp32 differs from its own float64. fp16 :data:`FP16_TOLERANCE`: PyTorch's own fp16
forward differs from its fp32 one by up to 1.7e-2 (span_tiny; 5e-3 to 7e-3 for span, spanf,
rlfn, efdn, i.e. 2-4 grey levels, PSNR vs fp32 59-61 dB) on the sample set's first two
images, and a correct fp16 backend can do no better than that.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from srbench.backends.records import BackendAgreement
from srbench.data.cache import ImageCache
from srbench.measure.metrics import psnr, to_uint8

#: How many of the dataset's first images are compared.
AGREEMENT_IMAGES = 2
FP32_TOLERANCE = 1e-3
FP16_TOLERANCE = 3e-2
#: An int8 variant's output is its own result (its PSNR cost is measured, not assumed): its
#: agreement with the fp32 file is recorded but never excludes its quality (the whole [0, 1]).
INT8_TOLERANCE = 1.0
TOLERANCES = {"fp32": FP32_TOLERANCE, "fp16": FP16_TOLERANCE, "int8": INT8_TOLERANCE}

#: ``lr uint8 (H, W, 3) -> output float32 (3, sH, sW) on [0, 1], unclamped``.
Upscale = Callable[[object], torch.Tensor]


def measure_agreement(
    images: ImageCache,
    backend: Upscale,
    reference: Upscale,
    *,
    dtype: str,
    reference_label: str,
    n: int = AGREEMENT_IMAGES,
) -> BackendAgreement:
    """Compare ``backend`` with ``reference`` (PyTorch) on the first ``n`` images of ``images``."""
    names: list[str] = []
    worst = 0.0
    worst_u8 = 0
    worst_psnr = math.inf
    with torch.inference_mode():
        for name, lr, _hr in images:
            if len(names) >= n:
                break
            a = backend(lr).float().clamp(0, 1).cpu()
            b = reference(lr).float().clamp(0, 1).cpu()
            worst = max(worst, float((a - b).abs().max()))
            ua, ub = to_uint8(a), to_uint8(b)
            worst_u8 = max(worst_u8, int((ua.to(torch.int16) - ub.to(torch.int16)).abs().max()))
            worst_psnr = min(worst_psnr, psnr(ua, ub, crop_border=0))
            names.append(name)
    tolerance = TOLERANCES.get(dtype, FP16_TOLERANCE)
    return BackendAgreement(
        reference=reference_label,
        images=names,
        max_abs_diff=worst,
        max_abs_diff_u8=worst_u8,
        psnr_vs_torch_db=worst_psnr,
        tolerance=tolerance,
        within_tolerance=worst <= tolerance,
    )
