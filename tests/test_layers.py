"""The packages of hrdfund stand in one order, and imports only point down it.

A feature may import what sits below it and never what sits above: the ledger knows
nothing of pools, cases nothing of reviews or grants, reports nothing of the commands that
print them. A feature never reaches for another feature's private (``_name``) helper, and no
module imports another from inside a function to dodge a cycle; only the app factory
assembles the features that way.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "hrdfund"

#: Bottom to top. Each entry may import itself and what comes before it, never after.
ORDER = (
    "core",
    "audit",
    "auth",
    "ledger",
    "alerts",
    "cases",
    "pools",
    "reviews",
    "grants",
    "directory",
    "disbursements",
    "network",
    "reports",
    "ops",
    "demo",
    "cli",
    # The app factory and the registry of every table assemble everything.
    "models",
    "__init__",
)
RANK = {name: rank for rank, name in enumerate(ORDER)}
#: Where importing inside a function is the pattern itself: the app factory imports the
#: features it assembles only once the app exists.
ASSEMBLY = {"__init__"}


def _layer(module):
    """The layer of a dotted module name inside hrdfund (``hrdfund.cases.views`` -> cases)."""
    parts = module.split(".")
    if parts[0] != "hrdfund":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path, root):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _target(path, root, node):
    """The absolute module an ImportFrom node reads from."""
    if node.level == 0:
        return node.module or ""
    base = _module_name(path, root).split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(path, root, tree):
    """Every hrdfund import in ``tree``: (node, target module, names, inside a function)."""
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            )
            if isinstance(child, ast.ImportFrom):
                target = _target(path, root, child)
                names = [alias.name for alias in child.names]
                found.append((child, target, names, in_function))
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    found.append((child, alias.name, [], in_function))
            visit(child, nested)

    visit(tree, False)
    return [item for item in found if item[1].split(".")[0] == "hrdfund"]


def _is_module(root, dotted):
    path = root.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _sources():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _problems(paths, root=ROOT):
    problems = set()
    for path in paths:
        here = _layer(_module_name(path, root))
        tree = ast.parse(path.read_text(), filename=str(path))
        where = path.relative_to(root)
        module_aliases = {}
        for node, target, names, in_function in _imports(path, root, tree):
            for name in names or [""]:
                # `from .. import audit` names a module: its layer is the name's.
                full = f"{target}.{name}" if name and target == "hrdfund" else target
                there = _layer(full)
                if there is None:
                    continue
                if there not in RANK or here not in RANK:
                    problems.add(f"{where}:{node.lineno}: {there!r} or {here!r} has no layer")
                    continue
                if RANK[there] > RANK[here]:
                    problems.add(f"{where}:{node.lineno}: {here} imports {full}, above it")
                if there != here and name.startswith("_"):
                    problems.add(f"{where}:{node.lineno}: {here} takes {there}'s private {name}")
                if in_function and here not in ASSEMBLY:
                    problems.add(f"{where}:{node.lineno}: {full} imported inside a function")
            for alias in getattr(node, "names", []):
                module = f"{target}.{alias.name}" if isinstance(node, ast.ImportFrom) else target
                there = _layer(module)
                if there not in (None, here) and _is_module(ROOT, module):
                    module_aliases[alias.asname or alias.name.split(".")[-1]] = there
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in module_aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                owner = module_aliases[node.value.id]
                problems.add(f"{where}:{node.lineno}: {here} reaches {owner}'s private {node.attr}")
    return sorted(problems)


def test_every_package_of_hrdfund_has_a_place_in_the_order():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert packages | modules <= set(ORDER), sorted((packages | modules) - set(ORDER))


def test_imports_point_down_the_order_and_never_at_another_feature_s_private_helpers():
    assert _problems(_sources()) == []


@pytest.mark.parametrize(
    "where, planted, says",
    [
        ("hrdfund/ledger/planted.py", "from ..grants.models import Grant\n", "above it"),
        ("hrdfund/cases/planted.py", "from ..reviews import services\n", "above it"),
        ("hrdfund/grants/planted.py", "from ..pools.services import _pair\n", "private _pair"),
        (
            "hrdfund/grants/planted.py",
            "from ..pools import services\n\nservices._pair('EUR', 'USD')\n",
            "private _pair",
        ),
        (
            "hrdfund/reports/planted.py",
            "def late():\n    from ..grants import services\n",
            "inside a function",
        ),
        ("hrdfund/ledger/planted.py", "import hrdfund.disbursements.views\n", "above it"),
    ],
)
def test_the_check_finds_what_breaks_the_order(tmp_path, where, planted, says):
    """The check itself, on a module written where it would break the order (in a copy
    of the tree's layout under a temporary folder): it must name the problem."""
    planted_file = tmp_path / where
    planted_file.parent.mkdir(parents=True)
    planted_file.write_text(planted)
    problems = _problems([planted_file], root=tmp_path)
    assert any(says in problem for problem in problems), problems
