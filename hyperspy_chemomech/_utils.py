"""Small shared helpers: progress bars honouring HyperSpy's preference, lazy package names,
BLAS thread control."""

import contextlib
import functools


def show_progressbar_default(show_progressbar=None):
    """Resolve ``show_progressbar=None`` to HyperSpy's preference.

    Parameters
    ----------
    show_progressbar : bool or None
        Explicit choice; ``None`` reads ``hs.preferences.General.show_progressbar``.

    Returns
    -------
    bool
    """
    if show_progressbar is not None:
        return bool(show_progressbar)
    try:
        from hyperspy.defaults_parser import preferences

        return bool(preferences.General.show_progressbar)
    except Exception:  # pragma: no cover - HyperSpy always present in practice
        return False


def progressbar(iterable=None, show_progressbar=None, **kwargs):
    """HyperSpy's tqdm progress bar, disabled when the preference says so.

    Parameters
    ----------
    iterable : iterable, optional
        What to iterate over.
    show_progressbar : bool or None
        ``None`` follows ``hs.preferences.General.show_progressbar``.
    **kwargs
        Passed to tqdm (``total``, ``desc``, ...).
    """
    from hyperspy.external.progressbar import progressbar as _pb

    return _pb(iterable, disable=not show_progressbar_default(show_progressbar), **kwargs)


def attach(package, submod_attrs=None, submodules=()):
    """Lazy public names of a package (PEP 562), in the shape of ``lazy_loader.attach``.

    Every package of hyperspy_chemomech exports its names this one way, as
    scikit-image does: nothing is imported until a name is first used, so
    ``import hyperspy_chemomech`` stays cheap and never imports pyxem or orix.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    submod_attrs : dict
        Module -> public names it defines. A module is named relative to
        ``package`` (``"_fit"``) or, for a name re-exported from another package
        of this project, with leading dots (``"..fields"``).
    submodules : iterable of str
        Subpackages reachable as attributes (``package.sub``), imported on first use.

    Returns
    -------
    (callable, callable, list)
        The package's ``__getattr__``, ``__dir__`` and ``__all__``.
    """
    import importlib

    where = {name: mod for mod, names in (submod_attrs or {}).items() for name in names}
    subs = set(submodules)
    __all__ = sorted(where.keys() | subs)

    def __getattr__(name):
        if name in subs:
            return importlib.import_module(f"{package}.{name}")
        if name in where:
            mod = where[name]
            target = (importlib.import_module(mod, package) if mod.startswith(".")
                      else importlib.import_module(f"{package}.{mod}"))
            return getattr(target, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return list(__all__)

    return __getattr__, __dir__, __all__


@functools.lru_cache(maxsize=1)
def package_version():
    """This package's version: set at install time from the git tag (setuptools-scm).

    Editable installs have it too; a source tree that was never installed gives
    ``"0+unknown"``.
    """
    import importlib.metadata

    try:
        return importlib.metadata.version("hyperspy_chemomech")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


_CONTROLLER = None


@contextlib.contextmanager
def one_blas_thread():
    """Limit BLAS to one thread inside the block.

    SuperLU's supernode blocks and the learning's tall-skinny products (a few
    tens of columns) gain nothing from BLAS threads, and on a shared machine
    their spin-waiting makes them several times slower.
    """
    global _CONTROLLER
    if _CONTROLLER is None:  # inspecting the loaded libraries reads /proc: once
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a declared dependency
            yield
            return
        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=1, user_api="blas"):
        yield


def with_one_blas_thread(func):
    """Decorator: run ``func`` inside :func:`one_blas_thread`."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with one_blas_thread():
            return func(*args, **kwargs)

    return wrapper
