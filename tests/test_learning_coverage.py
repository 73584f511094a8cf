"""Honest uncertainty: over 50 seeds of the Vegard case, 95 % intervals cover the truth.

The same study, with a table, is ``python benchmarks/learning.py --coverage 50``.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest


def _coverage_study():
    """The study lives with its benchmark (the library does not import the simulator)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "learning.py"
    if not path.exists():
        pytest.skip(f"the learning benchmark ({path}) is not in this checkout")
    spec = importlib.util.spec_from_file_location("_learning_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.coverage_study


@pytest.mark.slow
def test_coverage_over_50_seeds():
    c = _coverage_study()(50, seed0=1000)
    assert np.all(np.array(c["slope_coverage"]) >= 0.9), c
    assert np.all(np.array(c["pointwise_band_coverage"]) >= 0.9), c
    assert np.all(np.array(c["max_abs_slope_err"]) < 0.03), c
