"""Honest uncertainty: over 50 seeds of the Vegard case, 95 % intervals cover the truth.

The same study, with a table, is ``python benchmarks/learning.py --coverage 50``.
"""

import numpy as np
import pytest

from hyperspy_chemomech.learning._validation import coverage_study


@pytest.mark.slow
def test_coverage_over_50_seeds():
    c = coverage_study(50, seed0=1000)
    assert np.all(np.array(c["slope_coverage"]) >= 0.9), c
    assert np.all(np.array(c["pointwise_band_coverage"]) >= 0.9), c
    assert np.all(np.array(c["max_abs_slope_err"]) < 0.03), c
