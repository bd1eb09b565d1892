"""What a results row was measured from, by content: the test ``--resume`` applies.

A row of ``results.json`` belongs to the weights, the code and the data it was measured
from, not to their names or paths: a checkpoint overwritten in place (BasicSR's
``net_g_latest.pth``), an edited model file or a replaced image keeps its path but is another
thing. Each row therefore records its :class:`RowIdentity`:

* ``weights_sha256``: sha256 of the checkpoint file's bytes (None: no checkpoint);
* ``code_sha256``: :func:`srbench.measure.complexity_cache.structure_hash` of the built,
  untrained network: its module structure and the source files of its classes and of the
  helpers they call (the key the complexity and ONNX export caches use);
* ``data_sha256``: sha256 over the dataset's images: each pair's name and the sha256 of its
  HR and LR files' bytes (the embedded sample set: its names, read from scikit-image).

``run --resume`` and ``sweep --resume`` keep a stored row only when all three are equal to
what the files give now; otherwise the row is measured again and the run prints why
(:func:`identity_changes`).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any

from srbench.core.errors import SrbenchError
from srbench.data.datasets import Dataset
from srbench.measure.complexity_cache import structure_hash
from srbench.models.registry import get_entry
from srbench.models.specs import ModelSpec
from srbench.models.weights import resolve_weights, sha256_file
from srbench.runner.building import build_architecture


@dataclass(frozen=True)
class RowIdentity:
    """The content a row was measured from (see the module docstring); hex digests."""

    weights_sha256: str | None
    code_sha256: str
    data_sha256: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``ModelResult.identity``)."""
        return asdict(self)


def data_digest(dataset: Dataset) -> str:
    """sha256 (hex) over ``dataset``'s pairs, in order: each name and its HR/LR files' sha256."""
    h = hashlib.sha256()
    for source in dataset.sources:
        hr = sha256_file(source.hr_path) if source.hr_path is not None else "embedded"
        lr = sha256_file(source.lr_path) if source.lr_path is not None else "generated"
        h.update(f"{source.name}|{hr}|{lr}\n".encode())
    return h.hexdigest()


def weights_digest(spec: ModelSpec, scale: int) -> str | None:
    """sha256 of the checkpoint ``spec`` loads at ``scale`` as found now (None: none on disk)."""

    try:
        entry = get_entry(spec.arch) if spec.code is None else None
    except SrbenchError:
        entry = None
    if entry is None:  # user code: only an explicit checkpoint
        return sha256_file(spec.weights_path) if spec.weights_path is not None else None
    found = resolve_weights(entry, scale, spec.weights_path)
    return found.sha256 if found is not None else None


#: ``code_sha256``/``weights_sha256`` of a model that cannot be built or whose checkpoint
#: cannot be found now: its row is an error row, never reused, and this never equals a digest.
UNAVAILABLE = "unavailable"


def row_identity(spec: ModelSpec, scale: int, data_sha256: str) -> RowIdentity:
    """The :class:`RowIdentity` of ``spec`` at ``scale`` now (builds the untrained network).

    Never raises for a model fault: a network that will not build, or a checkpoint that
    cannot be resolved, gives :data:`UNAVAILABLE` (the measurement itself reports why)."""
    try:
        _, model = build_architecture(spec, scale)
        code = structure_hash(model)
    except Exception:  # the measuring worker turns this into the row's error
        code = UNAVAILABLE
    try:
        weights = weights_digest(spec, scale)
    except (SrbenchError, OSError):
        weights = UNAVAILABLE
    return RowIdentity(weights, code, data_sha256)


def stamp(result: Any, identity: RowIdentity) -> None:
    """Record ``identity`` on ``result`` (a :class:`~srbench.results.schema.ModelResult`).

    The checkpoint the measurement actually loaded wins over the one found before it ran
    (official weights downloaded by the worker): its sha256 is in ``result.weights``."""
    record = identity.to_dict()
    if result.weights is not None:
        record["weights_sha256"] = result.weights.sha256
    result.identity = record


#: What each identity field is called in the resume line.
_WHAT = {
    "weights_sha256": "its checkpoint's content",
    "code_sha256": "the model's code",
    "data_sha256": "the data's content",
}


def identity_changes(stored: dict[str, Any] | None, now: RowIdentity) -> list[str]:
    """Phrases for what differs between a stored row's identity and ``now`` ([] when equal)."""
    if not stored:
        return ["the stored row does not record what it was measured from (older srbench)"]
    out = []
    for key, value in now.to_dict().items():
        old = stored.get(key)
        if old != value:
            short = f" (sha256 {str(old)[:12]}… → {str(value)[:12]}…)" if key == "weights_sha256" else ""
            out.append(f"{_WHAT[key]} changed{short}")
    return out
