"""What an NTIRE Efficient SR challenge's ``test_demo.py`` says about each team, read (never run).

The challenge script's ``select_model(args, device)`` is one ``if model_id == N: ... elif ...``
chain; each branch imports the team's model, builds it, loads its checkpoint and sets the row
name and the data range by hand. :func:`read_test_demo` reads every branch from the syntax
tree into a :class:`DemoBranch`. The spellings read (those of the 2022, 2023, 2024, 2025 and
2026 repositories):

* ``from models.team38_SPAN import SPAN30`` and ``from models.team02_x.NLFFC import Netw``
  (sub-packages), ``from models.team40_y import RFDN as RFDNPrune`` (aliases);
* ``m = importlib.import_module(f'models.team{model_id:02}_SPAN')`` then
  ``getattr(m, 'SPAN30')(...)`` or ``m.SPAN30(...)``;
* the constructor call, positional and keyword literal arguments (a bare ``data_range`` as an
  argument is that branch's value), with method chains such as ``.eval().to(device)``;
* ``name, data_range = f"{model_id:02}_Name", 1.0`` (the row name, formatted as Python does);
* the checkpoint file (any string literal ending in a checkpoint suffix), the key it is read
  under (``torch.load(p)['params_ema']``) and ``strict=`` of ``load_state_dict``, or a model
  method that loads it (``model.load_weights(model_path)``);
* statements after loading that change the network: ``model.repa()``,
  ``model = model.fuse()`` and ``for m in model.modules(): if hasattr(m, 'switch_deploy'):
  m.switch_deploy()`` (:attr:`DemoBranch.post_load`).

Only the ``select_model`` function is read when there is one, and only its ``model_id``
chain, so a ``model_id == N`` test elsewhere (2024's special forward for team 34) is not
mistaken for the team's branch.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The challenge's evaluation script.
TEST_DEMO = "test_demo.py"

#: Checkpoint suffixes a branch's file name may end with.
CHECKPOINT_SUFFIXES: tuple[str, ...] = (".pth", ".pt", ".ckpt", ".safetensors", ".pkl")

#: ``load_state_dict`` and the names test_demo.py uses for a model's own loader.
_LOADERS = ("load_state_dict",)


@dataclass(frozen=True)
class DemoBranch:
    """What ``test_demo.py`` says about one team (its ``model_id == N`` branch).

    Attributes:
        team: the ``model_id``.
        module: the model module below ``models`` (``team38_SPAN``, ``team02_nlffc.NLFFC``).
        cls: the class or factory it calls (its own name, not an alias).
        args, kwargs: that call's literal arguments (None when any is not a literal).
        row: the row name the branch sets (``00_EFDN_baseline``); None when not literal.
        checkpoint: the checkpoint path it names, relative to the repository root.
        state_key: the key the state dict is read under (``params_ema``), if any.
        strict: ``load_state_dict``'s ``strict`` (True when not given, as torch's default).
        loader: a model method that loads the checkpoint instead (``load_weights``).
        post_load: ``("model.repa", "modules.switch_deploy", ...)``: calls after loading,
            ``model.X`` on the model, ``modules.X`` on every submodule that has ``X``.
        data_range: its ``data_range``.
    """

    team: int
    module: str | None = None
    cls: str | None = None
    args: tuple[Any, ...] | None = ()
    kwargs: dict[str, Any] | None = None
    row: str | None = None
    checkpoint: str | None = None
    state_key: str | None = None
    strict: bool = True
    loader: str | None = None
    post_load: tuple[str, ...] = ()
    data_range: float | None = None


def read_test_demo(repo: Path, script: str = TEST_DEMO) -> dict[int, DemoBranch]:
    """Team id → :class:`DemoBranch`, read from ``repo/test_demo.py``; {} if absent or unparsable.

    Branches that only ``pass`` are left out (the challenge's withdrawn teams).
    """
    try:
        tree = ast.parse((Path(repo) / script).read_text(encoding="utf-8", errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return {}
    scope: ast.AST = next(
        (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "select_model"), tree
    )
    out: dict[int, DemoBranch] = {}
    for node in _chains(scope):
        while isinstance(node, ast.If):
            team = _model_id_test(node.test)
            if team is not None and team not in out and not all(isinstance(s, ast.Pass) for s in node.body):
                out[team] = _read_branch(team, node.body)
            node = node.orelse[0] if len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If) else None
    return out


def _chains(scope: ast.AST) -> list[ast.If]:
    """The ``if`` statements that start a chain (not an ``elif`` of another), shallowest first."""
    elifs = {
        id(n.orelse[0])
        for n in ast.walk(scope)
        if isinstance(n, ast.If) and len(n.orelse) == 1 and isinstance(n.orelse[0], ast.If)
    }
    return [n for n in ast.walk(scope) if isinstance(n, ast.If) and id(n) not in elifs]


def _model_id_test(test: ast.expr) -> int | None:
    # ``model_id == 38``, ``args.model_id == 38``, ``model_id == -1``
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
        left, right = test.left, test.comparators[0]
        name = left.id if isinstance(left, ast.Name) else getattr(left, "attr", None)
        try:
            value = ast.literal_eval(right)
        except ValueError:
            return None
        if name == "model_id" and isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def format_fstring(node: ast.expr, names: dict[str, Any]) -> str | None:
    """The value of string literal or f-string ``node`` with ``names`` bound; None if unknown."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if not isinstance(node, ast.JoinedStr):
        return None
    parts: list[str] = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        elif isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name):
            if value.value.id not in names:
                return None
            spec = format_fstring(value.format_spec, names) if value.format_spec is not None else ""
            if spec is None:
                return None
            parts.append(format(names[value.value.id], spec))
        else:
            return None
    return "".join(parts)


def _literal(node: ast.expr, names: dict[str, Any]) -> Any:
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    text = format_fstring(node, names) if isinstance(node, ast.JoinedStr) else None
    if text is not None:
        return text
    return ast.literal_eval(node)


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


def _unchain(call: ast.expr) -> ast.expr:
    """``X(...)`` from ``X(...).eval().to(device)``."""
    while (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr in ("eval", "to", "cuda", "cpu", "float", "train")
        and isinstance(call.func.value, ast.Call)
    ):
        call = call.func.value
    return call


def _read_branch(team: int, body: list[ast.stmt]) -> DemoBranch:
    names: dict[str, Any] = {"model_id": team}
    classes: dict[str, tuple[str, str]] = {}  # local name -> (module below models, class)
    modules: dict[str, str] = {}  # local name of an importlib-imported module -> module
    nodes = [n for stmt in body for n in ast.walk(stmt)]
    for n in nodes:
        if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("models."):
            for a in n.names:
                classes[a.asname or a.name] = (n.module.split(".", 1)[1], a.name)
        if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name):
            value = n.value
            if (
                isinstance(value, ast.Call)
                and getattr(value.func, "attr", getattr(value.func, "id", None)) == "import_module"
                and value.args
            ):
                text = format_fstring(value.args[0], names)
                if text is not None and text.startswith("models."):
                    modules[n.targets[0].id] = text.split(".", 1)[1]
    data_range = None
    row = None
    for stmt in body:
        for n in ast.walk(stmt):
            value = _assigned(n, "data_range")
            if isinstance(value, ast.Constant) and isinstance(value.value, (int, float)):
                data_range = float(value.value)
                names["data_range"] = value.value
            value = _assigned(n, "name")
            if value is not None and row is None:
                row = format_fstring(value, names)
    module = cls = None
    args: tuple[Any, ...] | None = ()
    kwargs: dict[str, Any] | None = {}
    built_at = None
    for i, stmt in enumerate(body):
        value = _assigned(stmt, "model")
        call = _unchain(value) if value is not None else None
        if not isinstance(call, ast.Call):
            continue
        found = _callee(call.func, classes, modules)
        if found is None:
            continue
        module, cls = found
        try:
            args = tuple(_literal(a, names) for a in call.args if not isinstance(a, ast.Starred))
            kwargs = {k.arg: _literal(k.value, names) for k in call.keywords if k.arg is not None}
            if any(isinstance(a, ast.Starred) for a in call.args) or any(
                k.arg is None for k in call.keywords
            ):
                args, kwargs = None, None
        except (ValueError, TypeError, SyntaxError):
            args, kwargs = None, None
        built_at = i
        break
    checkpoint = state_key = loader = None
    strict = True
    post: list[str] = []
    after = body[built_at + 1 :] if built_at is not None else []
    # ``state = torch.load(...)`` then ``state['params_ema']``: the key is read off the name.
    loaded_names = {
        target.id
        for n in nodes
        if isinstance(n, ast.Assign) and _is_load(n.value)
        for target in n.targets
        if isinstance(target, ast.Name)
    }
    for n in nodes:
        if (
            isinstance(n, ast.Constant)
            and isinstance(n.value, str)
            and n.value.lower().endswith(CHECKPOINT_SUFFIXES)
        ):
            checkpoint = checkpoint or n.value
        if isinstance(n, ast.Call) and n.args and getattr(n.func, "attr", None) == "join":
            parts = [format_fstring(a, names) for a in n.args]
            if all(p is not None for p in parts) and str(parts[-1]).lower().endswith(CHECKPOINT_SUFFIXES):
                checkpoint = "/".join(p for p in parts if p)  # type: ignore[misc]
        if isinstance(n, ast.Subscript) and (_is_load(n.value) or _names(n.value) & loaded_names):
            key = n.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                state_key = state_key or key.value
    for stmt in after:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in _LOADERS:
                for k in n.keywords:
                    if k.arg == "strict" and isinstance(k.value, ast.Constant):
                        strict = bool(k.value.value)
                if len(n.args) > 1 and isinstance(n.args[1], ast.Constant):
                    strict = bool(n.args[1].value)
        post_call = _post_load(stmt)
        if post_call is not None:
            kind, method = post_call
            if kind == "loader":
                loader = method
            else:
                post.append(f"{kind}.{method}")
    return DemoBranch(
        team=team,
        module=module,
        cls=cls,
        args=args,
        kwargs=kwargs,
        row=row.strip() if row else None,
        checkpoint=checkpoint,
        state_key=state_key,
        strict=strict,
        loader=loader,
        post_load=tuple(post),
        data_range=data_range,
    )


def _callee(
    func: ast.expr, classes: dict[str, tuple[str, str]], modules: dict[str, str]
) -> tuple[str, str] | None:
    """``(module, class)`` a constructor call's callee names, through aliases and importlib."""
    if isinstance(func, ast.Name) and func.id in classes:
        return classes[func.id]
    # getattr(model_module, 'SPAN30') / getattr(model_module, f'SPAN30')
    if isinstance(func, ast.Call) and isinstance(func.func, ast.Name) and func.func.id == "getattr":
        if len(func.args) == 2 and isinstance(func.args[0], ast.Name) and func.args[0].id in modules:
            name = format_fstring(func.args[1], {})
            if name:
                return modules[func.args[0].id], name
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in modules:
        return modules[func.value.id], func.attr
    return None


_NOT_POST = {"eval", "to", "cuda", "cpu", "float", "train", "load_state_dict", "requires_grad_", "half"}


def _post_load(stmt: ast.stmt) -> tuple[str, str] | None:
    """``("model", X)``/``("modules", X)``/``("loader", X)`` for a statement after the build."""
    value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
    if isinstance(stmt, ast.Assign) and not (
        len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == "model"
    ):
        value = None
    if (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Attribute)
        and isinstance(value.func.value, ast.Name)
        and value.func.value.id == "model"
        and value.func.attr not in _NOT_POST
    ):
        method = value.func.attr
        if method.startswith("load") and value.args:
            return "loader", method
        if not value.args and not value.keywords:
            return "model", method
    # for m in model.modules(): if hasattr(m, 'X'): m.X()
    if (
        isinstance(stmt, ast.For)
        and isinstance(stmt.iter, ast.Call)
        and getattr(stmt.iter.func, "attr", None) == "modules"
        and isinstance(stmt.target, ast.Name)
    ):
        for n in ast.walk(stmt):
            if (
                isinstance(n, ast.Call)
                and isinstance(n.func, ast.Attribute)
                and isinstance(n.func.value, ast.Name)
                and n.func.value.id == stmt.target.id
                and not n.args
            ):
                return "modules", n.func.attr
    return None


def _is_load(node: ast.AST) -> bool:
    """``torch.load(...)`` (or any ``load(...)`` call)."""
    return isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "load"


def _names(node: ast.AST) -> set[str]:
    return {node.id} if isinstance(node, ast.Name) else set()
