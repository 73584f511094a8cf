"""The package's structure, read from its own imports (function-level ones included).

Layers, bottom to top (``docs/conventions.rst``, design.md): the ground (``fields``,
``_utils``, ``_metadata``); the engines on plain arrays (``spectra``, ``mechanics``,
``decomposition``, ``learning``, registration's array core); the HyperSpy signal
classes (``signals``); the faces that make signals (``io``, the ``diffraction`` bridge,
registration's signal face, ``simulate``); the demo and the CLI. pyxem's conventions
are converted in the ground (``fields``), so no signal class imports the bridge.
Imports only go down. These tests walk every ``import`` statement with ``ast``, resolve
names re-exported by a package ``__init__`` to the module that defines them, and fail
on a cycle, an upward import, an engine that imports HyperSpy or the signal classes, a
reach into another subpackage's private module, or a library module using ``simulate``.
"""

import ast
from pathlib import Path

import pytest

PKG = "hyperspy_chemomech"
ROOT = Path(__file__).resolve().parents[1] / PKG

# modules of registration / diffraction that face HyperSpy signals; the rest is array core
SIGNAL_FACES = {
    f"{PKG}.registration._signals", f"{PKG}.registration._register",
    f"{PKG}.registration._transform", f"{PKG}.registration._pick",
    f"{PKG}.diffraction._strain_from_diffraction", f"{PKG}.diffraction._from_pyxem",
    f"{PKG}.diffraction._correlative_diffraction",  # the pyxem-side signal class
}
DEMO = {f"{PKG}._demo", f"{PKG}._demo_steps", f"{PKG}.__main__"}
# the one ground module allowed to read HyperSpy (its progress bar and preferences)
HYPERSPY_GROUND = {f"{PKG}._utils"}

RANKS = {  # layer of each module, bottom = 0
    "fields": 0, "_utils": 0, "_metadata": 1,
    "spectra": 2, "mechanics": 2,
    "decomposition": 3, "registration": 3,
    "learning": 4,
    "signals": 5,
    "io": 6, "faces": 6, "diffraction": 6,
    "simulate": 7,
    "demo": 8, "__init__": 9,
}
ENGINE_LAYERS = {"fields", "_utils", "_metadata", "spectra", "mechanics", "decomposition",
                 "registration", "diffraction", "learning"}


def _module_name(path):
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules():
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _is_package(name):
    return MODULES.get(name, Path()).name == "__init__.py"


def _attach_table(name):
    """Public name -> defining module, from a package ``__init__``'s ``attach`` call."""
    tree = ast.parse(MODULES[name].read_text())
    table = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "attach":
            for kw in node.keywords:
                if kw.arg == "submod_attrs":
                    for mod, names in ast.literal_eval(kw.value).items():
                        target = _resolve_relative(name, mod, is_pkg=True)
                        for n in names:
                            table[n] = target
                elif kw.arg == "submodules":
                    for n in ast.literal_eval(kw.value):
                        table[n] = f"{name}.{n}"
    return table


def _resolve_relative(current, module, is_pkg):
    """Absolute name of ``module`` (relative like '..fields' or '_fit') seen from ``current``."""
    if module.startswith("."):
        level = len(module) - len(module.lstrip("."))
        base = current.split(".") if is_pkg else current.split(".")[:-1]
        base = base[: len(base) - (level - 1)]
        rest = module.lstrip(".")
        return ".".join(base + ([rest] if rest else []))
    return f"{current}.{module}"


def _defining_module(package, attr, seen=()):
    """Follow a package's re-exports to the module that defines ``attr``."""
    sub = f"{package}.{attr}"
    if sub in MODULES:
        return sub
    table = _attach_table(package) if _is_package(package) else {}
    target = table.get(attr)
    if target is None:
        return package
    if _is_package(target) and target not in seen and target != package:
        return _defining_module(target, attr, seen + (package,))
    return target


def _imports(name, literal=False):
    """[(imported module, the statement's line)] of one module, every import in it.

    A name taken from a package's public face resolves to the module defining it
    (for cycles and layers); ``literal=True`` gives the module the statement names.
    """
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out.append((a.name, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(name, "." * node.level + (node.module or ""), is_pkg)
            else:
                base = node.module
            if base is None:
                continue
            if base.startswith(PKG) and base in MODULES and not literal:
                for a in node.names:
                    out.append((_defining_module(base, a.name) if _is_package(base)
                                else base, node.lineno))
            else:
                out.append((base, node.lineno))
    return out


def _internal_graph():
    graph = {}
    for name in MODULES:
        graph[name] = sorted({m for m, _ in _imports(name)
                              if m.startswith(PKG + ".") and m in MODULES and m != name})
    return graph


def _layer(name):
    if name == PKG:
        return "__init__"
    if name in DEMO:
        return "demo"
    if name in SIGNAL_FACES:
        return "faces"
    return name.split(".")[1]


def _subpackage(name):
    parts = name.split(".")
    return parts[1] if len(parts) > 2 else None


def test_the_walk_sees_the_package():
    # guard: the checks below must not pass by reading nothing
    graph = _internal_graph()
    assert len(MODULES) > 60
    assert sum(len(v) for v in graph.values()) > 80
    # names taken from a package's face resolve to the module that defines them
    assert f"{PKG}.fields._nye" in graph[f"{PKG}.decomposition._find"]
    assert f"{PKG}.mechanics._cache" in graph[f"{PKG}.decomposition._decompose"]
    for name in MODULES:
        assert _layer(name) in RANKS, f"{name} has no layer: add it to RANKS"


def test_no_import_cycles():
    graph = _internal_graph()
    state, stack, cycles = {}, [], []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in graph[n]:
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_imports_only_go_down():
    bad = []
    for name in MODULES:
        for mod, line in _imports(name):
            if mod.startswith(PKG + ".") and mod in MODULES and mod != name:
                if _subpackage(mod) == _subpackage(name) and _layer(mod) == _layer(name):
                    continue  # within one package and layer: the no-cycle test covers it
                if RANKS[_layer(mod)] > RANKS[_layer(name)]:
                    bad.append(f"{name}:{line} imports {mod} "
                               f"({_layer(name)} -> {_layer(mod)}, upward)")
    assert not bad, "\n".join(bad)


def test_engines_import_neither_hyperspy_nor_signals():
    bad = []
    for name in MODULES:
        if _layer(name) not in ENGINE_LAYERS or name in HYPERSPY_GROUND:
            continue
        for mod, line in _imports(name):
            if mod.split(".")[0] == "hyperspy" or mod.startswith(f"{PKG}.signals"):
                bad.append(f"{name}:{line} imports {mod}")
    assert not bad, "engine modules must stay on plain arrays:\n" + "\n".join(bad)


def test_private_modules_stay_private_to_their_package():
    bad = []
    for name in MODULES:
        for mod, line in _imports(name, literal=True):
            if not (mod.startswith(PKG + ".") and mod in MODULES):
                continue
            parts = mod.split(".")
            private = any(p.startswith("_") and p != "__init__" for p in parts[2:])
            if private and _subpackage(mod) != _subpackage(name):
                bad.append(f"{name}:{line} imports the private module {mod}")
    assert not bad, "\n".join(bad)


def test_only_simulate_tests_docs_and_the_demo_use_simulate():
    bad = []
    for name in MODULES:
        if _layer(name) in ("simulate", "demo"):
            continue
        for mod, line in _imports(name):
            if mod.startswith(f"{PKG}.simulate"):
                bad.append(f"{name}:{line} imports {mod}")
    assert not bad, "library modules must not depend on the test-data generator:\n" + \
        "\n".join(bad)


def test_every_package_exports_one_way():
    for name, path in MODULES.items():
        if path.name != "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        eager = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.level == 1
                 and n.module != "_utils"]
        assert not eager, f"{name} imports submodules eagerly; export through attach()"
        assert _attach_table(name), f"{name} exports nothing through attach()"


@pytest.mark.parametrize("package", sorted(n for n, p in MODULES.items()
                                           if p.name == "__init__.py"))
def test_every_exported_name_resolves(package):
    import importlib

    mod = importlib.import_module(package)
    for attr in _attach_table(package):
        assert getattr(mod, attr) is not None
