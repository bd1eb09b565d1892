"""Optional fallback: community checkpoints through spandrel (``pip install srbench[spandrel]``).

spandrel recognises dozens of community architectures from their state-dict keys. It is an
optional extra only (it pulls torchvision and so a CUDA torch). When our own registry does
not recognise a checkpoint, :func:`spandrel_entry` asks spandrel; a recognised file is
registered as a dynamic model ``spandrel-<arch>`` whose builder returns spandrel's network
(loaded by spandrel) and whose converter hands the same tensors back, so the runner loads
it with ``strict=True`` and measures it like any other model. Input range is [0,1], as
spandrel models take. Worker processes call :func:`spandrel_entry` again from the file.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from srbench.core.errors import SrbenchError
from srbench.models.registry import get_entry, list_models, register_model

PREFIX = "spandrel-"


def _load(path: Path) -> Any | None:
    try:
        import spandrel
    except ImportError:
        return None
    try:
        return spandrel.ModelLoader(device="cpu").load_from_file(str(path))
    except spandrel.UnsupportedModelError:
        return None
    except Exception as exc:
        raise SrbenchError(f"{path}: spandrel could not load it ({exc}); check the file") from None


def spandrel_entry(path: Path) -> tuple[str, int] | None:
    """Register ``path``'s spandrel-detected model; ``(name, scale)``, or None if unknown.

    None also when spandrel is not installed.
    """
    descriptor = _load(Path(path))
    if descriptor is None:
        return None
    if getattr(descriptor, "input_channels", 3) != 3 or getattr(descriptor, "output_channels", 3) != 3:
        raise SrbenchError(f"{path}: spandrel model is not RGB in/out; srbench measures RGB SR models")
    arch = str(getattr(descriptor.architecture, "id", descriptor.architecture)).lower()
    name = f"{PREFIX}{arch}"
    scale = int(descriptor.scale)
    network = descriptor.model.eval()
    state = {k: v.detach().clone() for k, v in network.state_dict().items()}
    if name in list_models(f"{PREFIX}*", include_test_only=True):
        entry = get_entry(name)
        if scale not in entry.scales:
            raise SrbenchError(f"{path}: another {name} checkpoint at x{entry.scales[0]} is in this run")
        return name, scale

    def build(scale: int = scale) -> Any:
        return copy.deepcopy(network)

    register_model(
        name,
        scales=(scale,),
        input_range=1.0,
        description=f"{arch} via spandrel (community checkpoint)",
        # spandrel already mapped the file onto its network; hand back those tensors.
        converter=lambda _state: dict(state),
        tags=("spandrel",),
        origin="spandrel",
    )(build)
    return name, scale
