"""An orix orientation gives the crystal frame: the same law as the equivalent angle."""

import numpy as np
import pytest

pytestmark = pytest.mark.pyxem   # orix import (numba): slow first time

ANGLE = 0.4  # rad, asymmetric: a transposed convention would give -0.4


def _orientation(angle, beam_tilt_deg=0.0):
    from orix.quaternion import Orientation

    # crystal -> sample (columns: [100], [010], [001] in image x, y and beam z)
    c, s = np.cos(angle), np.sin(angle)
    c2s = np.array([[c, 0.0, s], [s, 0.0, -c], [0.0, 1.0, 0.0]])
    t = np.radians(beam_tilt_deg)   # tilt the beam about image x
    tilt = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]])
    return Orientation.from_matrix((tilt @ c2s).T)   # orix: v_crystal = O * v_sample


def test_angle_from_orientation_and_crystal_map():
    from orix.crystal_map import CrystalMap, Phase, PhaseList
    from orix.quaternion import Rotation

    from hyperspy_chemomech.mechanics import crystal_angle_from_orientation

    o = _orientation(ANGLE)
    assert crystal_angle_from_orientation(o) == pytest.approx(ANGLE, abs=1e-9)
    xmap = CrystalMap(rotations=Rotation.from_matrix(np.stack([o.to_matrix()[0]] * 4)),
                      phase_list=PhaseList(Phase("LiFePO4", point_group="mmm")))
    assert crystal_angle_from_orientation(xmap) == pytest.approx(ANGLE, abs=1e-6)


def test_beam_off_the_zone_axis_is_refused_naming_the_angle():
    from hyperspy_chemomech.mechanics import crystal_angle_from_orientation

    assert crystal_angle_from_orientation(_orientation(ANGLE, 3.0)) == pytest.approx(
        ANGLE, abs=0.01)
    with pytest.raises(ValueError, match=r"12\.0 deg from \[010\]"):
        crystal_angle_from_orientation(_orientation(ANGLE, 12.0))


def test_orientation_gives_the_same_law_as_the_angle():
    from hyperspy_chemomech.simulate import make_particle

    p = make_particle(shape=(60, 90), noise=2e-4, crystal_angle=ANGLE, seed=3)
    strain, comp = p.strain_field(), p.composition_map()
    kw = dict(material="LiFePO4", degree=1, dislocations="ignore", show_progressbar=False)
    by_angle = strain.learn_eigenstrain(comp, crystal_angle=ANGLE, **kw)
    by_orix = strain.learn_eigenstrain(comp, crystal_angle=_orientation(ANGLE), **kw)
    wrong = strain.learn_eigenstrain(comp, crystal_angle=-ANGLE, **kw)
    v = by_angle.vegard()["slopes"]
    np.testing.assert_allclose(by_orix.vegard()["slopes"], v, rtol=1e-9)
    # the check can fail: the mirrored angle gives another law
    assert np.max(np.abs(wrong.vegard()["slopes"] - v)) > 5e-3
