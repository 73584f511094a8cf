"""Small shared helpers: progress bars honouring HyperSpy's preference, lazy package names,
BLAS thread control."""

import contextlib
import functools
import sys


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


def kernel_threads():
    """Threads for compiled loops that release the GIL (chunks of one array).

    The cores this process may use, capped by numba's thread count (the user's
    ``NUMBA_NUM_THREADS`` / ``numba.set_num_threads``); one outside the main thread,
    where the caller (a dask worker, a pool over particles) is already parallel.
    """
    import os
    import threading

    if threading.current_thread() is not threading.main_thread():
        return 1
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        n = os.cpu_count() or 1
    numba = sys.modules.get("numba")
    if numba is not None:
        n = min(n, numba.get_num_threads())
    return max(1, n)


#: the interpreter's switch interval (s) while :func:`run_chunks` runs Python beside its
#: workers: they take the GIL for a few microseconds between items
MEANWHILE_SWITCH_INTERVAL = 2e-4


def run_chunks(func, items, threads, show_progressbar=None, desc=None, meanwhile=None):
    """``func(item)`` for every item, on ``threads`` threads (the caller's among them).

    For work that releases the GIL (compiled loops); the results are discarded
    (``func`` writes into its output arrays). Items are handed out one at a time,
    so a thread slowed by other load takes fewer of them.

    Parameters
    ----------
    func : callable
    items : iterable
    threads : int
    show_progressbar : bool, optional
    desc : str, optional
        The progress bar's label.
    meanwhile : callable, optional
        Called (no arguments) in the calling thread while the other threads work,
        before it takes items itself: Python work that does not need their result
        (building the signal that will hold it) then costs no time of its own.
        With one thread it is called first.
    """
    items = list(items)
    bar = progressbar(total=len(items), show_progressbar=show_progressbar, desc=desc,
                      leave=False)
    n_workers = min(threads, len(items)) - 1
    if meanwhile is not None and threads > 1:
        n_workers = max(n_workers, 1)
    if n_workers <= 0:
        if meanwhile is not None:
            meanwhile()
        for item in items:
            func(item)
            bar.update(1)
        bar.close()
        return
    import threading

    queue = iter(items)   # a list iterator hands out each item once, under the GIL
    stop, errors = [], []

    def work():
        try:
            for item in queue:
                if stop:
                    break
                func(item)
                bar.update(1)
        except BaseException as exc:  # re-raised in the caller
            errors.append(exc)
            stop.append(True)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(n_workers)]
    for w in workers:
        w.start()
    try:
        if meanwhile is not None:
            # the workers need the GIL between their items (and to start): while the
            # caller runs Python they would wait for the switch interval (5 ms) each time
            interval = sys.getswitchinterval()
            sys.setswitchinterval(min(interval, MEANWHILE_SWITCH_INTERVAL))
            try:
                meanwhile()
            finally:
                sys.setswitchinterval(interval)
        work()
    except BaseException:
        stop.append(True)   # the workers finish their item and quit
        raise
    finally:
        for w in workers:
            w.join()
        bar.close()
    if errors:
        raise errors[0]


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
