"""Honest uncertainty: over 50 seeds of the Vegard case, 95 % intervals cover the truth.

The same study, with a table, is ``python benchmarks/learning.py --coverage 50``.
"""

import numpy as np
import pytest

from hyperspy_chemomech.learning import learn_law
from hyperspy_chemomech.learning._learn import resolve_stiffness
from hyperspy_chemomech.simulate.particle import make_particle


@pytest.mark.slow
def test_coverage_over_50_seeds():
    q = resolve_stiffness("LiFePO4")
    slope_in, point_in = [], []
    for seed in range(1000, 1050):
        p = make_particle(shape=(150, 250), noise=2e-3, n_dislocations=5, blur_factor=4,
                          seed=seed)
        fit = learn_law(p.strain, p.X_observed, p.pixel_size, q, show_progressbar=False)
        ci, truth = fit.vegard["ci95"], p.law.slopes
        slope_in.append((ci[:, 0] <= truth) & (truth <= ci[:, 1]))
        g = np.linspace(*fit.x_range, 41)
        point_in.append(np.mean(np.abs(fit.evaluate(g) - p.law(g)) <= fit.band(g), axis=1))
    slope_cov = np.mean(slope_in, axis=0)
    band_cov = np.mean(point_in, axis=0)
    assert np.all(slope_cov >= 0.9), slope_cov
    assert np.all(band_cov >= 0.9), band_cov
