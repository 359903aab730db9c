"""The packages' imports point one way: down the layers below, with no circle and no private name
crossing modules.

Every ``import`` and ``from ... import`` of ``models``, ``analyses`` and ``benchmarks`` is read from
the source (module level and inside functions alike; imports under ``if TYPE_CHECKING:`` never run
and are left out). A module belongs to the layer of the longest entry that names it or a package
above it (``"=name"``: that module alone). Three rules:

1. no circle among the modules;
2. no import of a module in a higher layer than the importer's (the same layer is allowed, rule 1
   keeps it acyclic);
3. no private name used outside its module: ``from m import _x`` or ``m._x`` of another project
   module, and no private module (``models._config``) imported from outside its parent package.

The checker is run on the repository and on small packages written to fail each rule, so a pass
means something.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "analyses", "benchmarks")

# Lowest first. Within ``models``: the ground, then what reads weights and records, the weighted term
# and the verdicts, the engines, what they calibrate, the side-by-side comparison, the families and
# the façade, and the package itself (which re-exports everything).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("models.errors", "models._config", "models._validate", "models._graph"),
    ("models.weights", "models.summary", "models.diagnostics", "models.compiled",
     "models.estimation.separation"),
    ("models.likelihood", "models.estimation.existence"),
    ("models.estimation", "models.sampling", "models.transform"),
    ("models.calibrate", "models.elpd"),
    ("models.comparison",),
    ("models.coin", "models.classes", "models.policy", "models.inference"),
    ("=models",),
    ("=analyses", "analyses.study", "analyses.output", "analyses.environments"),
    ("analyses.figures",),
    ("analyses",),
    ("analyses.cli",),
    ("analyses.__main__",),
    ("benchmarks",),
)


def layer_of(module: str, layers=LAYERS) -> int:
    """The index of the layer whose longest matching entry names ``module`` (ValueError: none does)."""
    best, best_length = None, -1
    for index, entries in enumerate(layers):
        for entry in entries:
            exact = entry.startswith("=")
            name = entry.lstrip("=")
            matches = module == name or (not exact and module.startswith(name + "."))
            if matches and len(name) > best_length:
                best, best_length = index, len(name)
    if best is None:
        raise ValueError(f"{module} is in no layer")
    return best


def module_names(root: Path, packages) -> dict[str, Path]:
    """Dotted name -> file of every module of ``packages`` under ``root``."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside ``if TYPE_CHECKING:`` blocks."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, (ast.Name, ast.Attribute)) and \
                (getattr(node.test, "id", None) or getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def imports(module: str, path: Path, modules: dict[str, Path]):
    """``(imported module, private names taken from it, local alias)`` for each import in ``path``
    that reaches a project module, and the attribute reads ``alias._name`` of project modules."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found, aliases = [], {}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in {m.split(".")[0] for m in modules}:
                    found.append((alias.name, []))
                    # "import a.b" binds a; "import a.b as c" binds c to a.b
                    aliases[alias.asname or alias.name.split(".")[0]] = (alias.name if alias.asname
                                                                         else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            if base.split(".")[0] not in {m.split(".")[0] for m in modules}:
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:   # a module imported from its package
                    found.append((submodule, []))
                    aliases[alias.asname or alias.name] = submodule
                else:
                    private = alias.name.startswith("_") and not alias.name.startswith("__")
                    found.append((base, [alias.name] if private else []))
    attribute_reads = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                and node.attr.startswith("_") and not node.attr.startswith("__"):
            attribute_reads.append((aliases[node.value.id], node.attr))
    return found, attribute_reads


def _private_module(name: str) -> str | None:
    """The package a private module (a part starting with one underscore) belongs to, else None."""
    parts = name.split(".")
    for index, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:index])
    return None


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for neighbour in graph.get(node, ()):
            if neighbour not in index:
                visit(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in on_stack:
                low[node] = min(low[node], index[neighbour])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(root: Path, packages=PACKAGES, layers=LAYERS) -> list[str]:
    """Every breach of the three rules in ``packages`` under ``root``, one sentence each."""
    modules = module_names(root, packages)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    problems = []
    for module, path in modules.items():
        found, attribute_reads = imports(module, path, modules)
        for target, private in found:
            if target not in modules:
                target = target.rpartition(".")[0] if target.rpartition(".")[0] in modules else target
            if target not in modules or target == module:
                continue
            graph[module].add(target)
            if layer_of(target, layers) > layer_of(module, layers):
                problems.append(f"{module} imports {target}, a higher layer")
            owner = _private_module(target)
            if owner is not None and not (module == owner or module.startswith(owner + ".")):
                problems.append(f"{module} imports the private module {target}")
            problems += [f"{module} imports the private name {target}.{name}" for name in private]
        problems += [f"{module} reads the private name {target}.{name}" for target, name in attribute_reads
                     if target != module]
    problems += [f"import circle: {' -> '.join(cycle)}" for cycle in _cycles(graph)]
    return problems


def test_the_repository_keeps_its_layers():
    assert violations(ROOT) == []


def test_every_module_has_a_layer():
    for name in module_names(ROOT, PACKAGES):
        layer_of(name)


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


TOY_LAYERS = (("toy.low", "toy._private"), ("toy.high",), ("=toy",))


@pytest.mark.parametrize("files, expected", [
    ({"toy/__init__.py": "", "toy/low.py": "def f():\n    from toy import high\n",
      "toy/high.py": "from toy import low\n"},
     ["toy.low imports toy.high, a higher layer", "import circle: toy.high -> toy.low"]),
    ({"toy/__init__.py": "", "toy/low.py": "_secret = 1\n", "toy/high.py": "from toy.low import _secret\n"},
     ["toy.high imports the private name toy.low._secret"]),
    ({"toy/__init__.py": "", "toy/low.py": "_secret = 1\n",
      "toy/high.py": "from toy import low\nlow._secret\n"},
     ["toy.high reads the private name toy.low._secret"]),
    ({"toy/__init__.py": "", "toy/_private.py": "", "toy/low.py": "", "toy/high.py": "",
      "other/__init__.py": "", "other/user.py": "from toy import _private\n"},
     ["other.user imports the private module toy._private"]),
    ({"toy/__init__.py": "", "toy/low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
      "    from toy import high\n", "toy/high.py": "from toy import low\n"}, []),
])
def test_the_checker_finds_circles_upward_imports_and_private_names(tmp_path, files, expected):
    root = _package(tmp_path, files)
    layers = (*TOY_LAYERS, ("other",))
    packages = ("toy", "other") if any(name.startswith("other/") for name in files) else ("toy",)
    assert sorted(violations(root, packages, layers)) == sorted(expected)
