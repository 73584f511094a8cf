"""Oracles of the fuzz set: what a call must do with bad or unusual input.

Every case ends in one of four outcomes, tallied for the table of issue 15:

``clear error``
    the call raised the expected exception and its message names the problem
    (the offending argument, file or value);
``correct``
    the call returned a result that meets its truth;
``obscure``
    it raised, but another exception or a message that does not name the problem;
``silent``
    it returned (no error) a wrong result, or nothing where an error was due.

A case whose input was modified fails too (``inputs modified``).
"""

import copy
import re

import numpy as np
import pytest

#: nodeid -> outcome, filled by the oracles (read by conftest's hooks).
OUTCOMES = {}


def _nodeid():
    import os

    return os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]


def _record(outcome):
    OUTCOMES[_nodeid()] = outcome


def _names(msg, names):
    """The entries of ``names`` (a str, or a tuple of alternatives) missing from ``msg``."""
    msg = msg.lower()
    missing = []
    for n in names:
        alts = n if isinstance(n, tuple) else (n,)
        if not any(a.lower() in msg for a in alts):
            missing.append(alts[0] if len(alts) == 1 else "/".join(alts))
    return missing


def expect_error(func, *args, exc=(ValueError, TypeError), names=(), **kwargs):
    """Oracle: ``func(*args, **kwargs)`` raises ``exc`` with a message naming ``names``.

    Returns the exception. Fails the test with the outcome ``obscure`` (another
    exception, or a message missing a name) or ``silent`` (no exception).
    """
    try:
        result = func(*args, **kwargs)
    except exc as err:
        missing = _names(str(err), names)
        if missing:
            _record("obscure")
            pytest.fail(f"obscure: {type(err).__name__}({err}) does not name {missing}")
        _record("clear error")
        return err
    except Exception as err:  # noqa: BLE001 - any other exception is an obscure failure
        _record("obscure")
        pytest.fail(f"obscure: expected {exc}, got {type(err).__name__}: {err}")
    _record("silent")
    pytest.fail(f"silent: no error; returned {repr(result)[:200]}")


def expect_truth(condition, what):
    """Oracle: a result meets its truth (else the outcome ``silent``)."""
    if not condition:
        _record("silent")
        pytest.fail(f"silent wrong result: {what}")
    _record("correct")


def run_truth(func, *args, **kwargs):
    """Run the call of a truth case: an exception there is an ``obscure`` failure."""
    try:
        return func(*args, **kwargs)
    except Exception as err:  # noqa: BLE001
        _record("obscure")
        pytest.fail(f"obscure: the call raised {type(err).__name__}: {err}")


def snapshot(obj):
    """A deep copy of an array, a signal (data + metadata) or a container of them."""
    if hasattr(obj, "axes_manager"):
        return ("signal", np.array(obj.data, copy=True), obj.metadata.as_dictionary(),
                [ax.get_axis_dictionary() for ax in obj.axes_manager._axes])
    if isinstance(obj, np.ndarray):
        return ("array", obj.copy())
    if isinstance(obj, (list, tuple)):
        return ("seq", [snapshot(o) for o in obj])
    return ("other", copy.deepcopy(obj))


def _same(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and bool(
            np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b) or (a != a and b != b)
    except Exception:  # noqa: BLE001
        return True


class unchanged:
    """Context manager: the given inputs (arrays, signals) are the same afterwards."""

    def __init__(self, *objs):
        self.objs = objs

    def __enter__(self):
        self.before = [snapshot(o) for o in self.objs]
        return self

    def __exit__(self, *exc):
        for k, (o, b) in enumerate(zip(self.objs, self.before)):
            if not _same(snapshot(o), b):
                OUTCOMES[_nodeid() + "::modified"] = "input modified"
                pytest.fail(f"input {k} ({type(o).__name__}) was modified in place")
        return False


def words(*w):
    """Alternatives for one name in a message (helper for readability)."""
    return tuple(w)


_ = re  # kept for pattern-based checks in the modules
