"""The shipped model zoo: importing this module registers every shipped architecture.

Each architecture's module holds its ``nn.Module``s, its registrations (with the official
weights as data) and its checkpoint converters, the way timm and spandrel arrange theirs;
this list only decides which modules make up the zoo and the order ``srbench list`` shows.
"""

from srbench.models import (  # noqa: F401  (imported for their registrations)
    bicubic,
    efdn,
    fdat,
    grla,
    rlfn,
    span,
    span_ca,
    spanf,
)
