"""Write the intersphinx inventories of HyperSpy, pyxem, NumPy and SciPy used offline.

The documentation builds without network, so ``docs/conf.py`` points intersphinx at
the inventories in this folder instead of fetching ``objects.inv`` from each
project's site. None of the installed packages ships an ``objects.inv``, so this
script writes small ones from the installed packages' public API (the names our
docs can refer to), with each project's documented URL scheme:

    python docs/_inventories/make_inventories.py      # needs sphobjinv

Rerun it after upgrading one of these packages (and commit the ``*.inv`` files).
With network, the real inventories work as well: download
``https://numpy.org/doc/stable/objects.inv`` (etc.) over the files here.
"""

import importlib
import inspect
from pathlib import Path

import sphobjinv as soi

HERE = Path(__file__).resolve().parent


def _resolve(name):
    """A module, or an attribute of one (hyperspy.api.signals is not a module)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        parent, attr = name.rsplit(".", 1)
        return getattr(_resolve(parent), attr)


def _members(modname, public_only=True):
    """(qualified name, object) of the public callables and classes of a module."""
    mod = _resolve(modname)
    names = getattr(mod, "__all__", None) or dir(mod)
    for name in sorted(set(names)):
        if public_only and name.startswith("_"):
            continue
        try:
            obj = getattr(mod, name)
        except Exception:  # noqa: BLE001 - lazy attributes that fail to import
            continue
        if inspect.isclass(obj) or callable(obj):
            yield f"{modname}.{name}", obj


def _role(obj):
    return "class" if inspect.isclass(obj) else "function"


def _write(project, version, entries, filename):
    inv = soi.Inventory()
    inv.project, inv.version = project, version
    seen = set()
    for name, role, uri in entries:
        if (name, role) in seen:
            continue
        seen.add((name, role))
        inv.objects.append(soi.DataObjStr(name=name, domain="py", role=role, priority="1",
                                          uri=uri, dispname="-"))
    text = inv.data_file(contract=True)
    (HERE / filename).write_bytes(soi.compress(text))
    print(f"{filename}: {len(inv.objects)} objects ({project} {version})")


def numpy_scipy():
    import numpy
    import scipy

    # numpy and scipy document every public object on its own generated page
    def generated(name):
        return f"reference/generated/{name}.html#$"

    entries = []
    for mod in ("numpy", "numpy.linalg", "numpy.random", "numpy.fft", "numpy.ma"):
        for name, obj in _members(mod):
            entries.append((name, _role(obj), generated(name)))
            if inspect.isclass(obj):
                for meth, _ in inspect.getmembers(obj, callable):
                    if not meth.startswith("_"):
                        entries.append((f"{name}.{meth}", "method", generated(f"{name}.{meth}")))
    entries.append(("numpy.ndarray", "class", generated("numpy.ndarray")))
    _write("NumPy", numpy.__version__, entries, "numpy.inv")

    entries = []
    for mod in ("scipy.ndimage", "scipy.io", "scipy.optimize", "scipy.sparse",
                "scipy.sparse.linalg", "scipy.linalg", "scipy.stats", "scipy.interpolate",
                "scipy.signal", "scipy.fft", "scipy.spatial"):
        for name, obj in _members(mod):
            entries.append((name, _role(obj), generated(name)))
    _write("SciPy", scipy.__version__, entries, "scipy.inv")


def hyperspy():
    import hyperspy

    entries = []
    # classes: one page each under reference/api.signals/; functions on their module page
    for name, obj in _members("hyperspy.api.signals"):
        short = name.rsplit(".", 1)[1]
        page = f"reference/api.signals/{short}.html"
        entries.append((name, "class", f"{page}#$"))
        for meth, _ in inspect.getmembers(obj, callable):
            if not meth.startswith("_"):
                entries.append((f"{name}.{meth}", "method", f"{page}#$"))
    for mod in ("hyperspy.api.plot", "hyperspy.api.plot.markers", "hyperspy.api.roi"):
        for name, obj in _members(mod):
            entries.append((name, _role(obj), f"reference/{mod.replace('hyperspy.', '')}.html#$"))
    entries.append(("hyperspy.api.load", "function", "reference/api.html#$"))
    _write("HyperSpy", hyperspy.__version__, entries, "hyperspy.inv")


def pyxem():
    import pyxem

    entries = []
    for name, obj in _members("pyxem.signals"):
        entries.append((name, "class", f"reference/generated/{name}.html#$"))
        for meth, _ in inspect.getmembers(obj, callable):
            if not meth.startswith("_"):
                entries.append((f"{name}.{meth}", "method",
                                f"reference/generated/{name}.html#$"))
    _write("pyxem", pyxem.__version__, entries, "pyxem.inv")


if __name__ == "__main__":
    numpy_scipy()
    hyperspy()
    pyxem()
