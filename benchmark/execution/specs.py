"""What ``--models`` names: registry names, ``name=path`` and checkpoint paths, as :class:`ModelSpec`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from srbench.errors import SrbenchError
from srbench.models.registry import get_entry


@dataclass(frozen=True)
class ModelSpec:
    """What ``--models`` named: a display name, a registered architecture and weights."""

    name: str
    arch: str
    weights_path: Path | None = None


def parse_model_specs(text: str, weights: dict[str, str] | None = None) -> list[ModelSpec]:
    """Parse ``--models`` (comma-separated registry names, ``name=path`` or checkpoint paths).

    ``--weights NAME=PATH`` entries attach explicit checkpoints to registry names.
    """
    weights = weights or {}
    specs: list[ModelSpec] = []
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        name, _, path = token.partition("=")
        if path or _looks_like_checkpoint(token):
            ckpt = Path(path or token)
            specs.append(_spec_from_checkpoint(name if path else None, ckpt))
            continue
        entry = get_entry(name)
        explicit = weights.get(name)
        specs.append(ModelSpec(name=name, arch=entry.name, weights_path=Path(explicit) if explicit else None))
    if not specs:
        raise SrbenchError("the model list is empty; name at least one model (see 'srbench list')")
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SrbenchError(f"{', '.join(dupes)} named more than once; name each model once")
    return specs


def _looks_like_checkpoint(token: str) -> bool:
    return token.endswith((".pth", ".pt", ".safetensors", ".ckpt")) or os.sep in token


def _spec_from_checkpoint(name: str | None, path: Path) -> ModelSpec:
    from srbench.models.loading import detect_architecture, read_checkpoint
    from srbench.models.spandrel_adapter import spandrel_entry

    if not path.is_file():
        raise SrbenchError(f"checkpoint {path} not found; check its path")
    if name is not None and _is_registered(name):
        return ModelSpec(name=name, arch=name, weights_path=path)
    detected = detect_architecture(read_checkpoint(path))
    if detected is None:
        detected = spandrel_entry(path)
    if detected is None:
        raise SrbenchError(
            f"{path}: no registered architecture fits this checkpoint's keys (nor spandrel's, "
            "if installed: pip install 'srbench[spandrel]'); name it as ARCH=PATH (see 'srbench list')"
        )
    arch, _scale = detected
    return ModelSpec(name=name or path.stem, arch=arch, weights_path=path)


def _is_registered(name: str) -> bool:
    try:
        get_entry(name)
    except SrbenchError:
        return False
    return True
