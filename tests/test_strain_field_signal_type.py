"""set_signal_type("strain_field") never yields an unconverted pyxem map (no pyxem needed).

pyxem's StrainMap instances carry ``current_basis_x``; a DisplacementGradientMap has
the (x, y | 3, 3) layout. The pyxem-made versions are in test_diffraction_pyxem.py.
"""

import numpy as np
import pytest

import hyperspy.api as hs

import hyperspy_chemomech as hcm
from hyperspy_chemomech.diffraction import from_pyxem


def _pyxem_like_strain_map(rng, basis=(1, 0), units="nm"):
    s = hs.signals.Signal2D(rng.normal(0, 0.01, (4, 5, 6)))
    for ax in s.axes_manager.signal_axes:
        ax.units, ax.scale = units, 2.0
    s.current_basis_x = list(basis)  # what pyxem's StrainMap.__init__ sets
    s.current_basis_y = [basis[1], -basis[0]]
    return s


@pytest.mark.parametrize("lazy", [False, True])
def test_pyxem_fingerprint_converts(rng, lazy):
    s = _pyxem_like_strain_map(rng)
    expected = from_pyxem(s).data
    raw = s.data.copy()
    if lazy:
        s = s.as_lazy()
        s.current_basis_x = [1, 0]
    s.set_signal_type("strain_field")
    assert type(s).__name__ == ("LazyStrainField" if lazy else "StrainField")
    got = np.asarray(s.data.compute() if lazy else s.data)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-15)
    assert not np.allclose(got, raw)
    assert s.metadata.Chemomech.from_pyxem.via == "set_signal_type('strain_field')"
    assert "current_basis_x" not in s.__dict__
    assert s.metadata.General.title == "Strain from pyxem"


def test_tensor_layout_converts(rng):
    d = hs.signals.Signal2D(np.tile(np.eye(3), (5, 6, 1, 1)) + rng.normal(0, 0.01, (5, 6, 3, 3)))
    for ax in d.axes_manager.navigation_axes:
        ax.units = "nm"
    expected = from_pyxem(d).data
    d.set_signal_type("strain_field")
    assert type(d) is hcm.StrainField and d.axes_manager.navigation_shape == (4,)
    np.testing.assert_allclose(d.data, expected, rtol=0, atol=1e-15)


def test_refusals_leave_no_strain_field(rng):
    rotated = _pyxem_like_strain_map(rng, basis=(0.6, 0.8))
    with pytest.raises(ValueError, match="rotated basis.*StrainField.from_pyxem"):
        rotated.set_signal_type("strain_field")
    assert not isinstance(rotated, hcm.StrainField)
    assert rotated.current_basis_x == [0.6, 0.8]
    uncalibrated = _pyxem_like_strain_map(rng, units="<undefined>")
    with pytest.raises(ValueError, match="no length calibration.*StrainField.from_pyxem"):
        uncalibrated.set_signal_type("strain_field")
    assert not isinstance(uncalibrated, hcm.StrainField)


def test_our_own_layout_is_left_alone(rng):
    sf = hcm.StrainField.from_components(*rng.normal(0, 0.01, (4, 5, 6)), scale=2.0)
    before = sf.data.copy()
    s = hs.signals.Signal2D(before.copy())
    s.set_signal_type("strain_field")
    np.testing.assert_array_equal(s.data, before)
    assert not s.metadata.has_item("Chemomech.from_pyxem")
    sf.set_signal_type("strain_field")
    np.testing.assert_array_equal(sf.data, before)
