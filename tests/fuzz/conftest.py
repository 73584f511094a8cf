"""The fuzz set of issue 15: hooks that tally the outcomes and guard against hangs."""

import json
import os
import signal

import pytest

from _oracles import OUTCOMES

#: Longest a single fuzz case may run (s) before it counts as a hang.
CASE_LIMIT_S = 90


@pytest.fixture(autouse=True)
def _no_hang():
    """A case that runs past CASE_LIMIT_S is a hang (SIGALRM, POSIX only)."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def on_alarm(signum, frame):
        OUTCOMES[os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" (", 1)[0]] = "hang"
        raise TimeoutError(f"fuzz case ran past {CASE_LIMIT_S} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(CASE_LIMIT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" and not (rep.when == "setup" and rep.failed):
        return
    key = item.nodeid
    if key in OUTCOMES:
        return
    if rep.passed:
        OUTCOMES[key] = "correct"
    elif call.excinfo is not None and call.excinfo.errisinstance(AssertionError):
        OUTCOMES[key] = "silent"
    else:
        OUTCOMES[key] = "obscure"


def pytest_terminal_summary(terminalreporter):
    cases = {k: v for k, v in OUTCOMES.items() if not k.endswith("::modified")}
    if not cases:
        return
    counts = {}
    for v in cases.values():
        counts[v] = counts.get(v, 0) + 1
    modified = sum(k.endswith("::modified") for k in OUTCOMES)
    line = ", ".join(f"{k}: {counts.get(k, 0)}" for k in
                     ("clear error", "correct", "obscure", "silent", "hang"))
    terminalreporter.write_line(f"fuzz outcomes over {len(cases)} cases: {line}; "
                                f"inputs modified: {modified}")
    path = os.environ.get("FUZZ_TALLY")
    if path:
        with open(path, "w") as f:
            json.dump({"counts": counts, "modified": modified, "cases": OUTCOMES}, f, indent=1)
