"""Twenty cheap registered "team entries" for simulated organiser sweeps (SRBENCH_PLUGINS).

``test_entry01`` … ``test_entry20``: conv(3→c) + ReLU + conv(c→3·scale²) + pixel shuffle with
``c = 4 + i``; random init (no trained weights), so rows are ``no-weights`` with real counts
and times, the figures an efficiency ranking needs.
"""

from __future__ import annotations

from torch import nn

from srbench.models.registry import list_models, register_model

ENTRIES = [f"test_entry{i:02d}" for i in range(1, 21)]


class _Entry(nn.Module):
    def __init__(self, width: int, scale: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 3 * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.body(x)


if ENTRIES[0] not in list_models(include_test_only=True):
    for _i, _name in enumerate(ENTRIES, start=1):

        def _build(scale: int = 4, _width: int = 4 + _i) -> nn.Module:
            return _Entry(_width, scale)

        register_model(
            _name,
            scales=(2, 3, 4),
            input_range=1.0,
            description=f"test-only: simulated team entry {_i}",
            has_trained_weights=False,
            tags=("test-only",),
        )(_build)
