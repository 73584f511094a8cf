"""Synthetic particles: the truth is self-consistent and each observation model works."""

import numpy as np
import pytest

from hyperspy_chemomech.simulate import correlative_particle, make_particle


def test_particle_truth_is_consistent():
    p = make_particle(shape=(40, 70), pixel_size=4.0, noise=1e-3, n_dislocations=2, seed=3)
    assert p.mask.sum() > 500 and np.isnan(p.strain[:, ~p.mask]).all()
    # observed = noise-free + white noise of the stated level
    d = (p.strain - p.strain_noise_free)[:, p.mask]
    assert abs(d.std() / 1e-3 - 1) < 0.05 and abs(d.mean()) < 1e-4
    assert p.dislocation_positions.shape == (2, 2)
    with pytest.raises(ValueError, match="mask shape"):
        make_particle(shape=(40, 70), mask=np.ones((10, 10), bool))


def test_diffraction_patterns_carry_the_particle_strain():
    p = make_particle(shape=(14, 20), pixel_size=5.0, noise=0.0, seed=1, fill=0.9)
    dp, truth = p.diffraction_patterns(detector_shape=(64, 64), dose=1e5, signal_type="")
    assert dp.data.shape == (14, 20, 64, 64)
    np.testing.assert_allclose(truth["components"][:, p.mask], p.strain_noise_free[:, p.mask])
    assert dp.axes_manager[0].scale == pytest.approx(5.0)


def test_correlative_particle_truth():
    c = correlative_particle(shape=(60, 100), seed=2, n_energies=20)
    assert c.stack.data.shape[-1] == 20
    assert c.xray_pixel_size == pytest.approx(4 * c.particle.pixel_size)
    ok = np.isfinite(c.xray_composition)
    assert ok.sum() > 50 and np.all((c.xray_composition[ok] >= 0) & (c.xray_composition[ok] <= 1))
    assert c.stem_image.data.shape == c.particle.mask.shape
