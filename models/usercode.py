"""Models from the user's own code: ``FILE.py:Class``, ``package.module:callable``, NTIRE folders.

A :class:`CodeRef` names a class or factory in a Python file or an importable module. It
is plain data (strings), so it travels to worker processes inside a
:class:`~srbench.models.specs.ModelSpec`; each process imports the file itself, once,
under a module name unique to the file's absolute path (two ``model.py`` files in
different folders never collide, and a file imported twice is the same module).

Its sibling modules never collide either: while a user file runs (its import, and the call
that builds the model) its own folder comes first on ``sys.path``, and every module imported
from that folder (or from a folder the file added to ``sys.path``) is taken out of
``sys.modules`` afterwards. The user's module keeps its references, so two files that each
``from blocks import Block`` get their own ``blocks.py``, and none of them is left where
srbench or the next user file would find it by name (:func:`user_imports`).

:func:`build_user_model` calls the class/factory with the user's JSON arguments (plus
``--scale`` when the signature takes a scale parameter and the arguments do not set it)
and returns a :class:`~srbench.models.registry.ModelEntry` for it, so the runner measures it
exactly as a registered model: same strict loading, same counting, same protocol.

Input range (the value range the network takes and returns, 1.0 for [0,1] or 255.0 for
[0,255]), first match wins: ``--input-range NAME=1|255``; the model's own ``input_range``
or ``data_range`` attribute (class or instance); 1.0. For NTIRE challenge folders there is
no default: the challenge set it by hand per team, so a team whose code does not declare
it is a one-line error naming the option.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from torch import nn

from srbench.core.errors import SrbenchError, cause
from srbench.models.ntire_demo import DemoBranch, read_test_demo
from srbench.models.registry import ModelEntry

#: Constructor parameter names that mean "the upscaling factor"; srbench passes ``--scale``
#: through the first one a user class accepts (unless ``--model-args`` sets it).
SCALE_PARAMETERS: tuple[str, ...] = ("scale", "upscale", "upscale_factor", "upscaling_factor", "sf")

#: Attributes a model may declare its input range with (srbench's name, then NTIRE's).
RANGE_ATTRIBUTES: tuple[str, ...] = ("input_range", "data_range")

#: Checkpoint suffixes srbench reads.
CHECKPOINT_SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".ckpt", ".safetensors", ".pkl")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True)
class NtireLoading:
    """What an NTIRE ``test_demo.py`` branch does between building and measuring a model.

    Attributes:
        state_key: the key the state dict is read under (``params_ema``); None: srbench's
            usual unwrapping (:func:`srbench.models.loading.canonicalize_state_dict`).
        strict: ``load_state_dict``'s ``strict`` in the branch.
        loader: a model method that loads the checkpoint itself (``load_weights``).
        post_load: calls after loading: ``model.X`` (``model.repa()``; a returned module
            replaces the model) and ``modules.X`` (``X()`` on every submodule that has it).
    """

    state_key: str | None = None
    strict: bool = True
    loader: str | None = None
    post_load: tuple[str, ...] = ()


@dataclass(frozen=True)
class CodeRef:
    """Where a user model's class or factory lives.

    Attributes:
        attr: the class or callable's name inside the file/module.
        path: absolute path of a ``.py`` file (None for an importable module).
        module: dotted module name (None for a file).
        ntire: True for an NTIRE challenge submission (``models/teamNN_Name.py``): no
            default input range.
    """

    attr: str
    path: str | None = None
    module: str | None = None
    ntire: bool = False
    #: Positional constructor arguments (an NTIRE ``test_demo.py`` call such as ``SPANF(3, 3, ...)``).
    args: tuple[Any, ...] = ()
    #: The NTIRE repository root (the folder holding ``models/``): on ``sys.path`` for its imports.
    repo: str | None = None
    #: How ``test_demo.py`` loads and finishes the model (:class:`NtireLoading`); None elsewhere.
    loading: NtireLoading | None = None
    #: Why this submission cannot be built (found while reading the folder); the worker reports
    #: it as the row's error so the other teams of a ``--teams`` run are still measured.
    problem: str | None = None

    @property
    def where(self) -> str:
        """The file or module, as messages name it."""
        return self.path if self.path is not None else str(self.module)

    def describe(self) -> str:
        """``FILE.py:Class`` or ``package.module:callable``."""
        return f"{self.where}:{self.attr}"


# --------------------------------------------------------------------------- parsing


def split_code_token(token: str) -> tuple[str, str | None] | None:
    """``(target, attr)`` when ``token`` names user code, else None.

    ``FILE.py:Class`` and ``FILE.py`` (attr None: to be discovered) name files;
    ``package.module:callable`` names a module. A registry name or a checkpoint path is not
    code (None).
    """
    target, sep, attr = token.rpartition(":")
    if sep and _IDENT.match(attr):
        if target.endswith(".py") or _DOTTED.match(target):
            return target, attr
    if token.endswith(".py"):
        return token, None
    return None


# --------------------------------------------------------------------------- importing

_FILE_MODULES: dict[str, ModuleType] = {}


#: Where installed code lives: never the user's own modules, even inside the user's folder
#: (a virtual environment in the project folder).
_INSTALLED = ("site-packages", "dist-packages")


def _own_module_file(file: str, roots: list[Path]) -> bool:
    """True when ``file`` is Python source under one of ``roots`` and not installed code."""
    try:
        path = Path(file).resolve()
    except (OSError, RuntimeError):
        return False
    if path.suffix != ".py" or any(part in _INSTALLED for part in path.parts):
        return False
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    if any(path.is_relative_to(p) for p in prefixes if p != Path("/")):
        return False
    return any(path.is_relative_to(root) for root in roots)


@contextlib.contextmanager
def user_imports(folders: tuple[Path, ...]) -> Iterator[set[str]]:
    """Run user code with its own ``folders`` first on ``sys.path``; afterwards take every module
    it imported from them out of ``sys.modules``.

    Yields a set that, on exit, holds the files of the modules taken out. Folders the code
    itself added to ``sys.path`` while running count as its own too (a repository root it
    inserts). Modules imported from anywhere else (torch, installed packages) stay.
    """
    roots = [Path(f).resolve() for f in folders]
    entries = [str(r) for r in roots]
    before_modules = set(sys.modules)
    before_path = set(sys.path)
    sys.path[:0] = entries
    importlib.invalidate_caches()
    taken: set[str] = set()
    try:
        yield taken
    finally:
        for entry in entries:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)
        added = [Path(p).resolve() for p in set(sys.path) - before_path if p]
        own = roots + added
        for name in set(sys.modules) - before_modules:
            module = sys.modules.get(name)
            file = getattr(module, "__file__", None)
            ours = name.startswith("srbench_user_") or name.split(".")[0] == "srbench"
            if file and not ours and _own_module_file(file, own):
                del sys.modules[name]
                taken.add(str(Path(file).resolve()))


def module_name_for(path: Path) -> str:
    """The unique ``sys.modules`` name of user file ``path`` (from its absolute path)."""
    resolved = str(Path(path).resolve())
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:12]
    stem = re.sub(r"\W", "_", Path(path).stem)
    return f"srbench_user_{digest}_{stem}"


def import_file(path: Path | str, *, extra_paths: tuple[Path, ...] = ()) -> ModuleType:
    """Import the Python file ``path`` once per process (later calls return the same module).

    The file's folder (and ``extra_paths``, e.g. an NTIRE repository's root) come first on
    ``sys.path`` while it runs, so its own sibling imports find its own files; the sibling
    modules are then taken out of ``sys.modules`` (:func:`user_imports`). Any exception while
    executing it becomes a one-line :class:`SrbenchError` naming the file and the exception.
    """
    path = Path(path).resolve()
    key = str(path)
    if key in _FILE_MODULES:
        return _FILE_MODULES[key]
    if not path.is_file():
        raise SrbenchError(f"model file {path} not found; check the path")
    name = module_name_for(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SrbenchError(f"model file {path} cannot be imported as Python; pass a .py file")
    module = importlib.util.module_from_spec(spec)
    # Registered before executing so that classes defined in it pickle and dataclasses work.
    sys.modules[name] = module
    try:
        with user_imports((path.parent, *extra_paths)):
            spec.loader.exec_module(module)
    except BaseException as exc:  # SyntaxError, ImportError, anything the file raises
        sys.modules.pop(name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise import_failure(f"model file {path}", exc, "fix the file (--debug shows the traceback)") from exc
    _FILE_MODULES[key] = module
    return module


def import_module(name: str) -> ModuleType:
    """Import dotted module ``name``; a one-line :class:`SrbenchError` on any failure."""
    try:
        return importlib.import_module(name)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise import_failure(
            f"module {name!r}",
            exc,
            "check that it is installed or on PYTHONPATH (--debug shows the traceback)",
        ) from exc


#: Words of a message that mean "this needs a GPU build": a custom CUDA extension or kernel.
_CUDA_WORDS = ("cuda", "nvcc", "cudart", "libc10_cuda", "triton")


def missing_package(exc: BaseException) -> str | None:
    """The top-level package name an import failure lacks (``einops``), else None.

    A ``ModuleNotFoundError`` for a module that is not on disk at all; ``models.x`` (the
    challenge folder's own files) does not count: that is the team's code.
    """
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        top = exc.name.split(".")[0]
        if top not in ("models", "utils") and not top.startswith("srbench_user_"):
            return top
    return None


def import_failure(what: str, exc: BaseException, fix: str) -> SrbenchError:
    """The one-line error for ``what`` failing to import: a missing third-party package
    (:data:`MISSING_PACKAGE` in the message, with the ``pip install`` line), a custom CUDA
    extension on a machine without one, or the exception itself."""
    package = missing_package(exc)
    if package is not None:
        return SrbenchError(
            f"cannot import {what}: {MISSING_PACKAGE} {package!r} (the model's own dependency); "
            f"install it: pip install {package}"
        )
    text = _first_line(exc)
    if isinstance(exc, (ImportError, OSError)) and any(w in text.lower() for w in _CUDA_WORDS):
        return SrbenchError(
            f"cannot import {what}: it needs a custom CUDA extension ({text}); "
            "measure it on a machine with CUDA and the extension built"
        )
    return SrbenchError(f"cannot import {what}: {type(exc).__name__}: {text}; {fix}")


#: :func:`classify_failure`'s answers.
FAULT_PACKAGE, FAULT_TEAM, FAULT_SRBENCH = "missing package", "team code", "srbench"


def classify_failure(reason: str) -> str:
    """Whose fault a failed row's ``reason`` is: a third-party package the model needs and
    this machine lacks, the model's own code (import, constructor, forward, checkpoint, CUDA
    extension, several classes to choose from), or srbench (anything else)."""
    if MISSING_PACKAGE in reason:
        return FAULT_PACKAGE
    team_marks = (
        "cannot import",
        "failed:",
        " raised ",
        "does not fit",
        "custom CUDA extension",
        "several candidate",
        "test_demo.py",
        "image ",
        "the profile input",
        "checkpoint ",
    )
    return FAULT_TEAM if any(m in reason for m in team_marks) else FAULT_SRBENCH


#: The words every missing-package error holds (the failure table and the folder summary key on it).
MISSING_PACKAGE = "needs the package"


def _first_line(exc: BaseException) -> str:
    return cause(exc, 200)  # first line, cut between words


def _folders(ref: CodeRef) -> tuple[Path, ...]:
    """The folders ``ref``'s file imports its siblings from: its own (and an NTIRE repository's
    root, whose files import each other as ``models.x``); none for an importable module."""
    if ref.path is None:
        return ()
    path = Path(ref.path).resolve()
    if not ref.ntire:
        return (path.parent,)
    return (path.parent, Path(ref.repo).resolve() if ref.repo else path.parent.parent)


def load_module(ref: CodeRef) -> ModuleType:
    """The module ``ref`` lives in (imported once per process)."""
    if ref.problem is not None:
        raise SrbenchError(ref.problem)
    if ref.path is not None:
        return import_file(Path(ref.path), extra_paths=_folders(ref)[1:])
    if ref.ntire and ref.repo is not None:
        return import_repo_module(Path(ref.repo), str(ref.module))
    return import_module(str(ref.module))


_REPO_MODULES: dict[tuple[str, str], ModuleType] = {}


def import_repo_module(repo: Path, name: str) -> ModuleType:
    """Import ``models.x.y`` from challenge repository ``repo`` as test_demo.py does (by module
    name from the repository root), once per process.

    A file inside a team's sub-package (``models.team02_x.NLFFC``) imports its package
    relatively, so it cannot be imported as a lone file. Any ``models`` package already
    imported (another repository's, or a checkout's own ``models/`` folder on the path) is set
    aside while it is imported and put back afterwards.
    """
    key = (str(repo), name)
    if key in _REPO_MODULES:
        return _REPO_MODULES[key]
    top = name.split(".")[0]
    aside = {k: sys.modules.pop(k) for k in list(sys.modules) if k == top or k.startswith(top + ".")}
    sys.path.insert(0, str(repo))
    # The repository's own ``models`` package, made explicitly: a namespace folder would
    # otherwise lose to any regular ``models`` package further down the path.
    folder = repo / top
    init = folder / "__init__.py"
    spec = (
        importlib.util.spec_from_file_location(top, init, submodule_search_locations=[str(folder)])
        if init.is_file()
        else importlib.machinery.ModuleSpec(top, None, is_package=True)
    )
    try:
        package = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        package.__path__ = [str(folder)]
        sys.modules[top] = package
        if spec is not None and spec.loader is not None:
            spec.loader.exec_module(package)
        module = import_module(name)
    finally:
        sys.path.remove(str(repo))
        for k in [k for k in sys.modules if k == top or k.startswith(top + ".")]:
            del sys.modules[k]
        sys.modules.update(aside)
    _REPO_MODULES[key] = module
    return module


def module_classes(module: ModuleType) -> list[type[nn.Module]]:
    """``nn.Module`` subclasses defined in ``module`` itself (not imported into it), in file order."""
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, nn.Module) and obj.__module__ == module.__name__
    ]
    return sorted(found, key=lambda c: _line_of(c))


def _line_of(cls: type) -> int:
    try:
        return inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return 0


def resolve_callable(ref: CodeRef) -> Callable[..., Any]:
    """The class or factory ``ref`` names; one-line errors for a missing name or a non-model."""
    module = load_module(ref)
    obj = getattr(module, ref.attr, None)
    if obj is None:
        defined = ", ".join(c.__name__ for c in module_classes(module)) or "no nn.Module classes"
        raise SrbenchError(f"{ref.where} has no {ref.attr!r} (it defines {defined}); fix the name after ':'")
    if inspect.isclass(obj) and not issubclass(obj, nn.Module):
        raise SrbenchError(
            f"{ref.describe()} is a class but not a torch.nn.Module; name the network's class "
            "(or a function returning one)"
        )
    if not callable(obj):
        raise SrbenchError(f"{ref.describe()} is a {type(obj).__name__}, not a class or function")
    return obj


# --------------------------------------------------------------------------- building


def _accepted_scale_parameter(fn: Callable[..., Any]) -> str | None:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    return next((p for p in SCALE_PARAMETERS if p in params), None)


def declared_input_range(obj: object) -> float | None:
    """The ``input_range``/``data_range`` a model (class or instance) declares, if any."""
    for attr in RANGE_ATTRIBUTES:
        value = getattr(obj, attr, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def check_input_range(value: float, *, what: str) -> float:
    """``value`` if it is 1 or 255, else a one-line error naming ``what``."""
    if value not in (1.0, 255.0):
        raise SrbenchError(
            f"{what}: input range {value:g} is neither 1 nor 255; pass --input-range NAME=1|255"
        )
    return float(value)


def build_user_model(
    ref: CodeRef,
    *,
    name: str,
    scale: int,
    kwargs: Mapping[str, Any] | None = None,
    input_range: float | None = None,
) -> tuple[ModelEntry, nn.Module]:
    """Build the model ``ref`` names, in eval mode, and a registry entry describing it.

    ``kwargs`` (from ``--model-args``) go to the class/factory; ``scale`` is passed through
    the first of :data:`SCALE_PARAMETERS` it accepts unless ``kwargs`` sets it. A model that
    declares another scale (an int ``scale``/``upscale`` attribute) is refused.

    Raises:
        SrbenchError: import failure, missing name, not an ``nn.Module``, arguments the
            constructor rejects, a scale or input range that does not fit.
    """
    fn = resolve_callable(ref)
    args = dict(kwargs or {})
    scale_param = _accepted_scale_parameter(fn)
    if scale_param is not None and scale_param not in _bound_names(fn, ref.args, args):
        args[scale_param] = scale
    try:
        # A constructor may import siblings lazily: they resolve to its own folder too.
        with user_imports(_folders(ref)):
            model = fn(*ref.args, **args)
    except TypeError as exc:
        raise SrbenchError(
            f"{ref.describe()}({_show_args(args, ref.args)}) failed: {_first_line(exc)}; "
            f"pass its constructor arguments as JSON: --model-args {name}='{{\"arg\": value}}'"
        ) from exc
    except SrbenchError:
        raise
    except Exception as exc:
        raise SrbenchError(
            f"{ref.describe()}({_show_args(args, ref.args)}) raised "
            f"{type(exc).__name__}: {_first_line(exc)}; "
            "fix the model or its --model-args (--debug shows the traceback)"
        ) from exc
    if not isinstance(model, nn.Module):
        raise SrbenchError(
            f"{ref.describe()} returned a {type(model).__name__}, not a torch.nn.Module; "
            "name the network's class or a function returning one"
        )
    declared_scale = next(
        (
            v
            for a in ("scale", "upscale", "upscale_factor")
            if isinstance(v := getattr(model, a, None), int) and not isinstance(v, bool)
        ),
        None,
    )
    if declared_scale is not None and declared_scale != scale:
        param = scale_param or "upscale"
        raise SrbenchError(
            f"{name} ({ref.describe()}) upscales x{declared_scale}, not x{scale}: run with --scale "
            f"{declared_scale}, or set its scale with --model-args {name}='{{\"{param}\": {scale}}}'"
        )
    if input_range is None:
        input_range = declared_input_range(model)
    if input_range is None:
        if ref.ntire:
            raise SrbenchError(
                f"{name} ({ref.where}) does not say its data range ([0,1] or [0,255]; the challenge set it "
                f"by hand): pass --input-range {name}=1 or --input-range {name}=255"
            )
        input_range = 1.0
    input_range = check_input_range(input_range, what=name)
    model.eval()

    def builder(scale: int = scale, **_: Any) -> nn.Module:
        return model

    entry = ModelEntry(
        name=ref.describe(),
        builder=builder,
        scales=(scale,),
        input_range=input_range,
        description=f"user model {ref.describe()}",
        origin="ntire" if ref.ntire else ("file" if ref.path is not None else f"module {ref.module}"),
    )
    return entry, model


def _show_args(args: Mapping[str, Any], positional: tuple[Any, ...] = ()) -> str:
    return ", ".join([*(repr(a) for a in positional), *(f"{k}={v!r}" for k, v in args.items())])


def _bound_names(fn: Callable[..., Any], positional: tuple[Any, ...], kwargs: Mapping[str, Any]) -> set[str]:
    """The parameter names ``fn(*positional, **kwargs)`` sets (positional ones by position)."""
    if not positional:
        return set(kwargs)
    try:
        params = [
            p.name
            for p in inspect.signature(fn).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return set(kwargs)
    return set(kwargs) | set(params[: len(positional)])


# --------------------------------------------------------------------------- NTIRE folders

_TEAM_FILE = re.compile(r"^(?:team)?(?P<id>\d+)_(?P<name>.+)$", re.IGNORECASE)


@dataclass(frozen=True)
class NtireTeam:
    """One challenge submission found in an NTIRE-layout repository.

    Attributes:
        row: the row name: the one ``test_demo.py`` gives (``00_EFDN_baseline``), else
            ``NN_Name`` from the file name (team id zero-padded to two digits).
        ref: the model class (its positional arguments and loading steps included).
        checkpoint: its checkpoint (None when there is none).
        model_args: keyword constructor arguments.
        input_range: the ``data_range`` the challenge set for it (None: not said).
    """

    row: str
    ref: CodeRef
    checkpoint: Path | None
    model_args: dict[str, Any] = field(default_factory=dict)
    input_range: float | None = None


#: ``ntire:REPO#ID`` names team ``ID`` of repository ``REPO`` (what ``--teams`` expands to).
TEAM_SEPARATOR = "#"


def parse_team_file(path: Path) -> tuple[int, str] | None:
    """``(team id, Name)`` from ``teamNN_Name.py`` / ``NN_Name.py``; None otherwise."""
    match = _TEAM_FILE.match(Path(path).stem)
    return (int(match["id"]), match["name"]) if match else None


def team_files(repo: Path) -> dict[int, list[Path]]:
    """Team id → model files under ``repo/models`` (``teamNN_Name.py`` or ``NN_Name.py``)."""
    models = Path(repo) / "models"
    if not models.is_dir():
        raise SrbenchError(
            f"{repo}: no models/ folder; pass the challenge repository's root "
            "(it holds models/ and model_zoo/)"
        )
    found: dict[int, list[Path]] = {}
    for path in sorted(models.glob("*.py")):
        parsed = parse_team_file(path)
        if parsed is not None:
            found.setdefault(parsed[0], []).append(path)
    return found


def repo_team_ids(repo: Path) -> list[int]:
    """Every team of ``repo``: the ``model_id`` branches of its ``test_demo.py`` and the team
    ids of its ``models/teamNN_*.py`` files, in increasing order."""
    return sorted(set(read_test_demo(Path(repo))) | set(team_files(Path(repo))))


def parse_teams(text: str, repo: Path) -> list[int]:
    """``--teams``: ``all``, or ids and ranges such as ``0,1-10,15`` (``-1``: the 2022 IMDN
    baseline's id), in the order given; one-line errors for anything else."""
    known = repo_team_ids(repo)
    if text.strip().lower() == "all":
        if not known:
            raise SrbenchError(
                f"--teams all: {repo} has no test_demo.py branches and no models/teamNN_*.py files"
            )
        return known
    out: list[int] = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        match = re.fullmatch(r"(-?\d+)(?:-(\d+))?", item)
        if match is None:
            raise SrbenchError(
                f"--teams {text!r}: {item!r} is not a team id or a range (e.g. --teams 0,1-10,15 or all)"
            )
        lo = int(match[1])
        hi = int(match[2]) if match[2] is not None else lo
        if hi < lo:
            raise SrbenchError(f"--teams {text!r}: the range {item!r} runs backwards; write {hi}-{lo}")
        ids = [t for t in known if lo <= t <= hi] if match[2] is not None else [lo]
        out += [t for t in ids if t not in out]
    return out


def ntire_team_tokens(repo: Path, teams: list[int]) -> list[str]:
    """One ``ntire:REPO#ID`` token per team (``--ntire-repo PATH --teams 0,22``); an id the
    repository does not know is a one-line error naming those it does."""
    known = repo_team_ids(repo)
    for team in teams:
        if team not in known:
            raise SrbenchError(
                f"--teams {team}: no test_demo.py branch and no models/team{team:02d}_*.py in {repo} "
                f"(teams there: {', '.join(str(t) for t in known) or 'none'})"
            )
    return [f"ntire:{Path(repo)}{TEAM_SEPARATOR}{t}" for t in teams]


def ntire_team_paths(repo: Path, teams: list[int]) -> list[Path]:
    """The model file of each team id in ``teams`` (one ``models/teamNN_*.py`` each)."""
    files = team_files(repo)
    out: list[Path] = []
    for team in teams:
        candidates = files.get(team, [])
        if not candidates:
            known = ", ".join(str(t) for t in sorted(files)) or "none"
            raise SrbenchError(
                f"--teams {team}: no models/team{team:02d}_*.py in {repo} (teams there: {known})"
            )
        if len(candidates) > 1:
            names = ", ".join(p.name for p in candidates)
            raise SrbenchError(
                f"--teams {team}: several model files ({names}); "
                "name one with --models ntire:PATH/models/FILE.py"
            )
        out.append(candidates[0])
    return out


def _repo_of(path: Path) -> Path:
    """The repository root of model file ``path``: the parent of its nearest ``models`` folder."""
    resolved = Path(path).resolve()
    for parent in resolved.parents:
        if parent.name == "models":
            return parent.parent
    return resolved.parent.parent


def _module_of(path: Path, repo: Path) -> str:
    """``team02_x.NLFFC`` for ``REPO/models/team02_x/NLFFC.py``."""
    rel = Path(path).resolve().relative_to((repo / "models").resolve()).with_suffix("")
    return ".".join(rel.parts)


def _from_branch(repo: Path, demo: DemoBranch, attr: str | None, path: Path | None) -> NtireTeam:
    """The team ``demo`` (a ``test_demo.py`` branch) describes."""
    module = str(demo.module)
    if path is None:
        path = repo / "models" / (module.replace(".", "/") + ".py")
        if not path.is_file() and (repo / "models" / module.replace(".", "/") / "__init__.py").is_file():
            path = repo / "models" / module.replace(".", "/") / "__init__.py"
    loading = NtireLoading(demo.state_key, demo.strict, demo.loader, demo.post_load)
    cls = attr or demo.cls
    same_call = attr is None or attr == demo.cls
    args = tuple(demo.args or ()) if same_call else ()
    if "." in module:
        ref = CodeRef(
            attr=str(cls), module=f"models.{module}", ntire=True, args=args, repo=str(repo), loading=loading
        )
    else:
        ref = CodeRef(
            attr=str(cls), path=str(path.resolve()), ntire=True, args=args, repo=str(repo), loading=loading
        )
    row = demo.row or f"{demo.team:02d}_{module.split('.')[0]}"
    checkpoint = (repo / demo.checkpoint) if demo.checkpoint else None
    if checkpoint is None or not checkpoint.is_file():
        named = parse_team_file(path)
        checkpoint = _find_checkpoint(path, demo.team, row) if named and named[0] == demo.team else None
    kwargs = dict(demo.kwargs or {}) if same_call else {}
    return NtireTeam(row, ref, checkpoint, kwargs, demo.data_range)


def ntire_team_of_repo(repo: Path, team: int, *, option: str = "--teams") -> NtireTeam:
    """Team ``team`` of ``repo``: its ``test_demo.py`` branch, else its one ``models/`` file.

    Never raises for the team's own code: a file that does not import or offers no single
    model class gives a team whose ``ref.problem`` says so (the worker reports it as the row's
    error), so one team never stops a ``--teams`` run.
    """
    repo = Path(repo).resolve()
    demo = read_test_demo(repo).get(team)
    if demo is not None and demo.module is not None and demo.cls is not None:
        return _from_branch(repo, demo, None, None)
    files = team_files(repo).get(team, [])
    row = f"{team:02d}_team"
    if len(files) != 1:
        problem = (
            f"team {team}: no test_demo.py branch builds it and models/ holds "
            + ("no" if not files else f"{len(files)} ({', '.join(p.name for p in files)})")
            + f" team{team:02d}_*.py files; name one as ntire:{repo}/models/FILE.py:Class"
        )
        return NtireTeam(row, CodeRef(attr="?", ntire=True, repo=str(repo), problem=problem), None)
    try:
        return ntire_team(files[0], option=option)
    except SrbenchError as exc:
        parsed = parse_team_file(files[0])
        row = f"{team:02d}_{parsed[1]}" if parsed else row
        return NtireTeam(
            row, CodeRef(attr="?", path=str(files[0]), ntire=True, repo=str(repo), problem=str(exc)), None
        )


def ntire_team(path: Path, attr: str | None = None, *, option: str = "--models") -> NtireTeam:
    """The submission whose model file is ``path`` (``REPO/models/teamNN_Name.py``, or a file in
    a team's sub-package, or a shared file such as ``imdn_baseline.py``).

    When ``REPO/test_demo.py`` (the challenge's script) has a ``model_id`` branch that
    imports this file, everything it says is used (:mod:`srbench.models.ntire_demo`: class,
    positional and keyword arguments, checkpoint and the key it is read under, ``strict``,
    calls after loading, ``data_range``, row name); otherwise:

    The model class is ``attr`` when given, else the one ``nn.Module`` class of the file
    that no other class of the file uses (a building block is not the model); when several
    remain, the one named like the file wins; otherwise a one-line error lists them. The
    checkpoint is the one file in ``REPO/model_zoo`` named ``teamNN_*``/``NN_*`` with a
    checkpoint suffix (several: the one with the model file's stem, else an error naming
    ``--weights``).
    """
    path = Path(path)
    if not path.is_file():
        raise SrbenchError(f"ntire:{path}: model file not found; check the path given to {option}")
    repo = _repo_of(path)
    parsed = parse_team_file(path)
    try:
        module = _module_of(path, repo)
    except ValueError:
        module = path.stem
    branches = [b for b in read_test_demo(repo).values() if b.module == module and b.cls is not None]
    if parsed is not None and any(b.team == parsed[0] for b in branches):
        branches = [b for b in branches if b.team == parsed[0]]
    if len(branches) == 1:
        return _from_branch(repo, branches[0], attr, path)
    if len(branches) > 1:
        ids = ", ".join(str(b.team) for b in branches)
        raise SrbenchError(
            f"ntire:{path}: test_demo.py builds it for several teams ({ids}); "
            f"name one: {option} ntire:{repo}{TEAM_SEPARATOR}{branches[0].team}"
        )
    if parsed is None:
        raise SrbenchError(
            f"ntire:{path}: the file name is not teamNN_Name.py or NN_Name.py and no test_demo.py branch "
            f"imports it; pass it as {option} FILE.py:Class instead"
        )
    team, team_name = parsed
    row = f"{team:02d}_{team_name}"
    if attr is None:
        attr = _find_model_class(path, row, team_name, option)
    ref = CodeRef(attr=attr, path=str(path.resolve()), ntire=True, repo=str(repo))
    return NtireTeam(row, ref, _find_checkpoint(path, team, row), {}, None)


def root_classes(path: Path, classes: list[type[nn.Module]]) -> list[type[nn.Module]]:
    """The classes of ``classes`` that no other class in file ``path`` refers to by name.

    A network's building blocks are used inside the network's class; the network itself is
    used by none (read from the file's syntax tree, so nothing is built).
    """
    used = _names_used_inside_classes(path)
    return [c for c in classes if c.__name__ not in _used_by_other_classes(used, c.__name__)]


def _find_model_class(path: Path, row: str, team_name: str, option: str) -> str:
    module = import_file(path.resolve(), extra_paths=(path.resolve().parent.parent,))
    classes = module_classes(module)
    if not classes:
        raise SrbenchError(f"ntire:{path} defines no torch.nn.Module class; is it the team's model file?")
    roots = root_classes(path, classes)
    if len(roots) == 1:
        return roots[0].__name__
    pool = roots or classes
    named = [c for c in pool if c.__name__.lower() == team_name.lower()]
    if len(named) == 1:
        return named[0].__name__
    choices = ", ".join(c.__name__ for c in pool)
    raise SrbenchError(
        f"ntire:{path}: several candidate model classes ({choices}) for {row}; "
        f"name one: {option} ntire:{path}:{pool[0].__name__}"
    )


def _names_used_inside_classes(path: Path) -> dict[str, set[str]]:
    """Class name → every bare name referenced inside that class's body (from the source)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except SyntaxError:
        return {}
    return {
        node.name: {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        for node in tree.body
        if isinstance(node, ast.ClassDef)
    }


def _used_by_other_classes(used: dict[str, set[str]], name: str) -> set[str]:
    return set().union(*(names for cls, names in used.items() if cls != name))


def _find_checkpoint(path: Path, team: int, row: str) -> Path | None:
    zoo = path.resolve().parent.parent / "model_zoo"
    if not zoo.is_dir():
        return None
    candidates = [
        p
        for p in sorted(zoo.iterdir())
        if p.is_file()
        and p.suffix.lower() in CHECKPOINT_SUFFIXES
        and (parsed := parse_team_file(p)) is not None
        and parsed[0] == team
    ]
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    same = [p for p in candidates if p.stem.lower() == path.stem.lower()]
    if len(same) == 1:
        return same[0]
    names = ", ".join(p.name for p in candidates)
    raise SrbenchError(f"{row}: several checkpoints in {zoo} ({names}); choose one with --weights {row}=PATH")
