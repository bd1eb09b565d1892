"""srbench.models: architectures (one module each), the registry and checkpoint loading."""

from srbench.models.registry import (
    ModelEntry,
    WeightsSpec,
    all_entries,
    create_model,
    get_entry,
    list_models,
    register_model,
)

__all__ = [
    "ModelEntry",
    "WeightsSpec",
    "all_entries",
    "create_model",
    "get_entry",
    "list_models",
    "register_model",
]
