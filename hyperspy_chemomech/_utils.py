"""Small shared helpers: progress bars honouring HyperSpy's preference, lazy package names."""

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


def lazy_names(package, names):
    """Module ``__getattr__`` and ``__dir__`` for names defined in submodules.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : dict
        Public name -> submodule (relative to ``package``) that defines it.

    Returns
    -------
    (callable, callable)
        Assign them to the package's ``__getattr__`` and ``__dir__``: a name is
        imported on first use (PEP 562), so importing the package stays cheap.
    """
    import importlib

    def __getattr__(name):
        if name in names:
            return getattr(importlib.import_module(f"{package}.{names[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(names)

    return __getattr__, __dir__


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
