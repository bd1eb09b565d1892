"""A model's runtime error as one line naming its input, for every command that runs models.

A network that raises on an input (RLFN/EFDN's ESA pooling on a 12x12 image: "Output size
is too small", a shape assertion, a dtype error) must not reach the user as a traceback.
:func:`model_call` wraps the call: any exception that is not already a
:class:`~srbench.core.errors.SrbenchError` (nor an interrupt) becomes a :class:`ModelInputError`
whose message names the model, the input (file or image name and its size) and, when the
failure is about size, the smallest square input the model accepts (found by
:func:`smallest_input`). ``run`` puts the message into the model's error row; ``upscale``,
``profile`` and ``export`` print it as ``srbench: error: ...`` and exit 2.

Usage::

    with model_call("rlfn", "image icon.png (12x12)", probe=lambda s: forward(zeros(s, s))):
        out = forward(x)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from srbench.core.errors import SrbenchError, cause

#: The largest square side :func:`smallest_input` tries (LR pixels).
PROBE_LIMIT = 256


class ModelInputError(SrbenchError):
    """A model raised on one input; the message names the model, the input and the fix."""

    def __init__(self, message: str, *, min_side: int | None = None) -> None:
        super().__init__(message)
        self.min_side = min_side


def smallest_input(probe: Callable[[int], object], *, limit: int = PROBE_LIMIT) -> int | None:
    """The smallest side ``s`` (1..``limit``) for which ``probe(s)`` (a forward of an s×s
    input) does not raise, by bisection; None when even ``limit`` fails (not a size problem).

    Assumes acceptance is monotone in the side (true of pooling/stride limits).
    """

    def ok(side: int) -> bool:
        try:
            probe(side)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception:
            return False
        return True

    if not ok(limit):
        return None
    lo, hi = 0, limit  # lo fails (0 is never valid), hi works
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


#: What to do when an input does not fit in memory.
FIX_MEMORY = "pass --tile 256 (or smaller), use a smaller image, or free memory"


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure (Python's, the CPU allocator's or CUDA's)."""
    text = str(exc)
    return isinstance(exc, MemoryError) or "out of memory" in text.lower() or "can't allocate memory" in text


def describe_failure(
    model: str,
    what: str,
    exc: BaseException,
    *,
    size: tuple[int, int] | None = None,
    probe: Callable[[int], object] | None = None,
    fix: str | None = None,
) -> ModelInputError:
    """The one-line error for ``model`` failing on ``what`` (e.g. ``"image icon.png"``).

    ``size`` is the input's (width, height) in the model's input pixels; with ``probe`` and a
    size below :data:`PROBE_LIMIT`, the smallest accepted side is searched and named when the
    input is smaller than it. ``fix`` overrides the default advice.
    """
    shown = f"{what} ({size[0]}x{size[1]})" if size else what
    if _out_of_memory(exc):
        # The input's size, not the model, is the cause: no smallest-input search (it would
        # allocate again), no "report it".
        return ModelInputError(
            f"model '{model}' ran out of memory on {shown}: {cause(exc)}; the input is too large for "
            f"the memory available: {FIX_MEMORY}"
        )
    min_side = None
    if probe is not None and size is not None and min(size) < PROBE_LIMIT:
        min_side = smallest_input(probe)
        if min_side is not None and min(size) >= min_side:
            min_side = None  # the model takes inputs this small: the failure is not about size
    message = f"model '{model}' failed on {shown}: {cause(exc)}"
    if min_side is not None:
        message += (
            f"; '{model}' accepts inputs of at least {min_side}x{min_side} pixels: "
            f"{fix or 'use a larger image (or another model)'}"
        )
    else:
        message += f"; {fix or 'rerun with --debug for the traceback and report it with the model name'}"
    return ModelInputError(message, min_side=min_side)


@contextlib.contextmanager
def model_call(
    model: str,
    what: str,
    *,
    size: tuple[int, int] | None = None,
    probe: Callable[[int], object] | None = None,
    fix: str | None = None,
) -> Iterator[None]:
    """Turn any exception of the wrapped model call into :func:`describe_failure`'s error.

    :class:`SrbenchError` (already one line) and interrupts pass through unchanged. The
    original exception is chained (``__cause__``), so ``--debug`` still shows where it came from.
    """
    try:
        yield
    except SrbenchError:
        raise
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        raise describe_failure(model, what, exc, size=size, probe=probe, fix=fix) from exc
