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
from srbench.models.registry import ModelEntry

#: Constructor parameter names that mean "the upscaling factor"; srbench passes ``--scale``
#: through the first one a user class accepts (unless ``--model-args`` sets it).
SCALE_PARAMETERS: tuple[str, ...] = ("scale", "upscale", "upscale_factor", "upscaling_factor", "sf")

#: Attributes a model may declare its input range with (srbench's name, then NTIRE's).
RANGE_ATTRIBUTES: tuple[str, ...] = ("input_range", "data_range")

#: Checkpoint suffixes srbench reads.
CHECKPOINT_SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".ckpt", ".safetensors")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


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
        raise SrbenchError(
            f"cannot import model file {path}: {type(exc).__name__}: {_first_line(exc)}; "
            "fix the file (--debug shows the traceback)"
        ) from exc
    _FILE_MODULES[key] = module
    return module


def import_module(name: str) -> ModuleType:
    """Import dotted module ``name``; a one-line :class:`SrbenchError` on any failure."""
    try:
        return importlib.import_module(name)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise SrbenchError(
            f"cannot import module {name!r}: {type(exc).__name__}: {_first_line(exc)}; "
            "check that it is installed or on PYTHONPATH (--debug shows the traceback)"
        ) from exc


def _first_line(exc: BaseException) -> str:
    return cause(exc, 200)  # first line, cut between words


def _folders(ref: CodeRef) -> tuple[Path, ...]:
    """The folders ``ref``'s file imports its siblings from: its own (and an NTIRE repository's
    root, whose files import each other as ``models.x``); none for an importable module."""
    if ref.path is None:
        return ()
    path = Path(ref.path).resolve()
    return (path.parent, path.parent.parent) if ref.ntire else (path.parent,)


def load_module(ref: CodeRef) -> ModuleType:
    """The module ``ref`` lives in (imported once per process)."""
    if ref.path is not None:
        return import_file(Path(ref.path), extra_paths=_folders(ref)[1:])
    return import_module(str(ref.module))


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
    if scale_param is not None and scale_param not in args:
        args[scale_param] = scale
    try:
        # A constructor may import siblings lazily: they resolve to its own folder too.
        with user_imports(_folders(ref)):
            model = fn(**args)
    except TypeError as exc:
        raise SrbenchError(
            f"{ref.describe()}({_show_args(args)}) failed: {_first_line(exc)}; "
            f"pass its constructor arguments as JSON: --model-args {name}='{{\"arg\": value}}'"
        ) from exc
    except SrbenchError:
        raise
    except Exception as exc:
        raise SrbenchError(
            f"{ref.describe()}({_show_args(args)}) raised {type(exc).__name__}: {_first_line(exc)}; "
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


def _show_args(args: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


# --------------------------------------------------------------------------- NTIRE folders

_TEAM_FILE = re.compile(r"^(?:team)?(?P<id>\d+)_(?P<name>.+)$", re.IGNORECASE)


@dataclass(frozen=True)
class NtireTeam:
    """One challenge submission found in an NTIRE-layout repository.

    Attributes:
        row: the row name, ``NN_Name`` (team id zero-padded to two digits).
        ref: the model class in ``models/``.
        checkpoint: its checkpoint in ``model_zoo/`` (None when there is none).
    """

    row: str
    ref: CodeRef
    checkpoint: Path | None
    model_args: dict[str, Any] = field(default_factory=dict)
    input_range: float | None = None


@dataclass(frozen=True)
class DemoBranch:
    """What the challenge's ``test_demo.py`` says about one team (its ``model_id == N`` branch).

    Attributes:
        module: the stem of the model file it imports (``from models.team38_SPAN import ...``).
        cls: the class it builds (``model = SPAN30(3, 3, upscale=4)``).
        args, kwargs: that call's literal arguments (None when any is not a literal).
        checkpoint: the base name of the checkpoint file it names.
        data_range: its ``data_range = ...``.
    """

    module: str | None = None
    cls: str | None = None
    args: tuple[Any, ...] | None = None
    kwargs: dict[str, Any] | None = None
    checkpoint: str | None = None
    data_range: float | None = None


#: The challenge's evaluation script; its ``select_model`` branches set each team's class,
#: constructor arguments, checkpoint and data range by hand.
TEST_DEMO = "test_demo.py"


def read_test_demo(repo: Path) -> dict[int, DemoBranch]:
    """Team id → :class:`DemoBranch`, read (never run) from ``repo/test_demo.py``; {} if absent."""
    path = Path(repo) / TEST_DEMO
    try:
        tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError):
        return {}
    out: dict[int, DemoBranch] = {}
    for node in ast.walk(tree):
        team = _model_id_test(node.test) if isinstance(node, ast.If) else None
        if team is not None and team not in out:
            out[team] = _read_branch(node.body)
    return out


def _model_id_test(test: ast.expr) -> int | None:
    # ``model_id == 38`` or ``args.model_id == 38``
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
        left, right = test.left, test.comparators[0]
        name = left.id if isinstance(left, ast.Name) else getattr(left, "attr", None)
        if name == "model_id" and isinstance(right, ast.Constant) and isinstance(right.value, int):
            return int(right.value)
    return None


def _read_branch(body: list[ast.stmt]) -> DemoBranch:
    module = cls = checkpoint = None
    args: tuple[Any, ...] | None = None
    kwargs: dict[str, Any] | None = None
    data_range: float | None = None
    imported: set[str] = set()
    nodes = [n for stmt in body for n in ast.walk(stmt)]
    for n in nodes:
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("models."):
            module = n.module.split(".", 1)[1]
            imported |= {a.asname or a.name for a in n.names}
    for n in nodes:
        value = _assigned(n, "data_range")
        if isinstance(value, ast.Constant) and isinstance(value.value, (int, float)):
            data_range = float(value.value)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in imported and cls is None:
            cls = n.func.id
            try:
                args = tuple(ast.literal_eval(a) for a in n.args)
                kwargs = {k.arg: ast.literal_eval(k.value) for k in n.keywords if k.arg is not None}
            except ValueError:
                args, kwargs = None, None
        if (
            isinstance(n, ast.Constant)
            and isinstance(n.value, str)
            and n.value.lower().endswith(CHECKPOINT_SUFFIXES)
        ):
            checkpoint = checkpoint or Path(n.value).name
    return DemoBranch(module, cls, args, kwargs, checkpoint, data_range)


def _assigned(node: ast.AST, name: str) -> ast.expr | None:
    """The value ``node`` assigns to ``name`` (``x = v`` or ``a, x = u, v``), else None."""
    if not isinstance(node, ast.Assign):
        return None
    for target in node.targets:
        if isinstance(target, ast.Name) and target.id == name:
            return node.value
        if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
            for t, v in zip(target.elts, node.value.elts):
                if isinstance(t, ast.Name) and t.id == name:
                    return v
    return None


def _bind_arguments(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``fn(*args, **kwargs)``'s arguments as keywords (``--model-args`` carries keywords only)."""
    try:
        bound = inspect.signature(fn).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return dict(kwargs) if not args else {}
    return dict(bound.arguments)


def parse_team_file(path: Path) -> tuple[int, str] | None:
    """``(team id, Name)`` from ``teamNN_Name.py`` / ``NN_Name.py``; None otherwise."""
    match = _TEAM_FILE.match(Path(path).stem)
    return (int(match["id"]), match["name"]) if match else None


def team_files(repo: Path) -> dict[int, list[Path]]:
    """Team id → model files under ``repo/models`` (``teamNN_Name.py`` or ``NN_Name.py``)."""
    models = Path(repo) / "models"
    if not models.is_dir():
        raise SrbenchError(
            f"--ntire-repo {repo}: no models/ folder; pass the challenge repository's root "
            "(it holds models/ and model_zoo/)"
        )
    found: dict[int, list[Path]] = {}
    for path in sorted(models.glob("*.py")):
        parsed = parse_team_file(path)
        if parsed is not None:
            found.setdefault(parsed[0], []).append(path)
    return found


def ntire_team_paths(repo: Path, teams: list[int]) -> list[Path]:
    """The model file of each team id in ``teams`` (``--ntire-repo PATH --teams 0,22``)."""
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


def ntire_team(path: Path, attr: str | None = None, *, option: str = "--models") -> NtireTeam:
    """The submission whose model file is ``path`` (``REPO/models/teamNN_Name.py``).

    When ``REPO/test_demo.py`` (the challenge's script) has a ``model_id == NN`` branch that
    imports this file, its class, literal constructor arguments, checkpoint and
    ``data_range`` are used (read from its syntax tree, never run); otherwise:

    The model class is ``attr`` when given, else the one ``nn.Module`` class of the file
    that no other class of the file uses (a building block is not the model); when several
    remain, the one named like the file wins; otherwise a one-line error lists them. The
    checkpoint is the one file in ``REPO/model_zoo`` named ``teamNN_*``/``NN_*`` with a
    checkpoint suffix (several: the one with the model file's stem, else an error naming
    ``--weights``).
    """
    path = Path(path)
    parsed = parse_team_file(path)
    if parsed is None:
        raise SrbenchError(
            f"ntire:{path}: the file name is not teamNN_Name.py or NN_Name.py; "
            f"pass it as {option} FILE.py:Class instead"
        )
    team, team_name = parsed
    row = f"{team:02d}_{team_name}"
    if not path.is_file():
        raise SrbenchError(f"ntire:{path}: model file not found; check the path given to {option}")
    repo = path.resolve().parent.parent
    demo = read_test_demo(repo).get(team)
    if demo is not None and demo.module not in (None, path.stem):
        demo = None  # that branch loads another file of the same team
    demo = demo or DemoBranch()
    if attr is None:
        attr = demo.cls or _find_model_class(path, row, team_name, option)
    ref = CodeRef(attr=attr, path=str(path.resolve()), ntire=True)
    model_args: dict[str, Any] = {}
    if demo.cls == attr and demo.args is not None and demo.kwargs is not None:
        model_args = _bind_arguments(resolve_callable(ref), demo.args, demo.kwargs)
    checkpoint = repo / "model_zoo" / demo.checkpoint if demo.checkpoint else None
    if checkpoint is None or not checkpoint.is_file():
        checkpoint = _find_checkpoint(path, team, row)
    return NtireTeam(row, ref, checkpoint, model_args, demo.data_range)


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
