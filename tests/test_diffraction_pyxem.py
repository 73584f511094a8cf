"""The pyxem bridge: pyxem's generator, pyxem's strain results, pyxem signal classes.

Everything that imports pyxem lives in this one module (the import costs ~30 s once).
"""

import numpy as np
import pytest

import hyperspy.api as hs

import hyperspy_chemomech as hcm
from hyperspy_chemomech.diffraction import from_pyxem, strain_from_diffraction
from hyperspy_chemomech.diffraction import simulated_strain_truth
from hyperspy_chemomech.fields import gradient_from_components

pytestmark = pytest.mark.pyxem

NAV = (16, 16)
STRAIN_MATRIX = np.array([[0.01, 0.005, 0.0], [0.015, 0.02, 0.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def pyxem_dataset():
    from pyxem.data import simulated_strain

    s = simulated_strain(navigation_shape=NAV, signal_shape=(256, 256), disk_radius=6,
                         num_electrons=None, strain_matrix=STRAIN_MATRIX, lazy=True)
    return s, simulated_strain_truth(STRAIN_MATRIX, NAV, reference=(0, 0))


def _check(got, truth, rel, what):
    for i, name in enumerate(("e11", "e22", "e12", "theta")):
        amp = np.abs(truth[i]).max()
        rms = np.sqrt(np.mean((got[i] - truth[i]) ** 2))
        slope = np.sum(got[i] * truth[i]) / np.sum(truth[i] ** 2)
        assert rms <= rel * amp, (what, name, rms, amp)
        assert abs(slope - 1) < 0.15, (what, name, slope)


def test_our_route_on_pyxem_generator(pyxem_dataset):
    """Agreement with the strain pyxem's generator imposed (up to its integer spots)."""
    s, truth = pyxem_dataset
    assert max(np.abs(truth[i]).max() for i in range(4)) > 1e-2
    sf = strain_from_diffraction(s, reference=((0, 1), (0, 1)), disk_radius=6)
    assert np.isfinite(sf.data).all()
    # the generator rounds spot positions to whole pixels (0.5 px of ~100 px), so
    # agreement is to ~5 % of each component's range; an axis swap or a sign
    # error is off by 50-200 %
    _check(sf.data, truth, 0.1, "ours")
    assert [ax.units for ax in sf.axes_manager.signal_axes] == ["nm", "nm"]


def test_our_route_on_pyxem_default_large_strain():
    """pyxem's default strain matrix (7 % strain here): exact finite-strain conversion."""
    from pyxem.data import simulated_strain

    nav = (12, 12)
    s = simulated_strain(navigation_shape=nav, signal_shape=(256, 256), disk_radius=6,
                         num_electrons=None, lazy=True)
    truth = simulated_strain_truth(None, nav, reference=(0, 0))
    assert np.abs(truth[0]).max() > 0.05
    sf = strain_from_diffraction(s, reference=((0, 1), (0, 1)), disk_radius=6)
    assert np.isfinite(sf.data).all()
    _check(sf.data, truth, 0.05, "ours, large strain")


def test_pyxem_workflow_through_from_pyxem(pyxem_dataset):
    s, truth = pyxem_dataset
    temp = s.template_match_disk(disk_r=6, subtract_min=False)
    vectors = temp.get_diffraction_vectors(threshold_abs=0.4, min_distance=5)
    vectors = vectors.filter_magnitude(0.1, 2)
    strain = vectors.get_strain_maps(unstrained_vectors=vectors.inav[0, 0])
    sf = hcm.StrainField.from_pyxem(strain)
    assert isinstance(sf, hcm.StrainField)
    # pyxem fits integer peak positions: coarser than ours, same truth
    _check(sf.data, truth, 0.25, "pyxem")
    # first order, pyxem's maps are (e22, e11, -e12, -theta) of ours
    first = np.stack([strain.data[1], strain.data[0], -strain.data[2], -strain.data[3]])
    np.testing.assert_allclose(first, sf.data, atol=5e-4)


def _vectors_pair(H, rng):
    """Reference and strained vectors as pyxem holds them: rows (ky, kx)."""
    g_ref = rng.normal(0, 0.5, (6, 2))  # (gx, gy), image frame
    A = np.linalg.inv(np.eye(2) + H).T
    g = g_ref @ A.T
    return g_ref[:, ::-1], g[:, ::-1]


def test_from_pyxem_exact_on_pyxem_tensors(rng):
    from pyxem.generators.displacement_gradient_tensor_generator import (
        get_single_DisplacementGradientTensor)

    comps = rng.normal(0, 0.02, (4, 3, 4))
    H = gradient_from_components(*comps)
    D = np.empty((3, 4, 3, 3))
    for idx in np.ndindex(3, 4):
        vu, vs = _vectors_pair(H[idx], rng)
        D[idx] = get_single_DisplacementGradientTensor(vs, Vu=vu)
    dgm = hs.signals.Signal2D(D)
    dgm.set_signal_type("tensor_field")
    for ax in dgm.axes_manager.navigation_axes:
        ax.units, ax.scale = "nm", 2.5
    sf = from_pyxem(dgm)
    np.testing.assert_allclose(sf.data, comps, atol=1e-12)
    assert [ax.scale for ax in sf.axes_manager.signal_axes] == [2.5, 2.5]
    # pyxem's own strain maps (polar decomposition) convert back exactly too
    sm = dgm.get_strain_maps()
    np.testing.assert_allclose(from_pyxem(sm).data, comps, atol=1e-10)
    # vectors fitted in (kx, ky) order
    D2 = D.copy()
    P = np.array([[0.0, 1.0], [1.0, 0.0]])
    D2[..., :2, :2] = P @ D[..., :2, :2] @ P
    dgm.data = D2
    np.testing.assert_allclose(from_pyxem(dgm, vector_order="xy").data, comps, atol=1e-12)


def test_from_pyxem_bad_input():
    with pytest.raises(ValueError, match="StrainMap"):
        from_pyxem(hs.signals.Signal2D(np.zeros((3, 5, 5))))
    sm = hs.signals.Signal2D(np.zeros((4, 5, 5)))
    with pytest.raises(ValueError, match="no length calibration"):
        from_pyxem(sm)
    for ax in sm.axes_manager.signal_axes:
        ax.units = "nm"
    with pytest.raises(ValueError, match="vector_order"):
        from_pyxem(sm, vector_order="kx")


def test_synthetic_4dstem_as_pyxem_signal():
    dp, truth = synthetic_4dstem_small(lazy=True)
    assert type(dp).__name__ == "LazyElectronDiffraction2D"
    sf = strain_from_diffraction(dp, reference=truth["reference_mask"], disk_radius=2.0)
    m = truth["mask"]
    err = sf.data[:, m] - truth["components"][:, m]
    assert np.sqrt(np.mean(err**2)) < 1e-3


def synthetic_4dstem_small(**kw):
    from hyperspy_chemomech.simulate import synthetic_4dstem

    return synthetic_4dstem(scan_shape=(8, 8), detector_shape=(96, 96), dose=1e5, **kw)


# ------------------------------------------------- set_signal_type("strain_field")
def _pyxem_strain_map(s):
    """pyxem's own strain workflow on its own generator (as in pyxem's strain tutorial)."""
    temp = s.template_match_disk(disk_r=6, subtract_min=False)
    vectors = temp.get_diffraction_vectors(threshold_abs=0.4, min_distance=5)
    vectors = vectors.filter_magnitude(0.1, 2)
    return vectors.get_strain_maps(unstrained_vectors=vectors.inav[0, 0])


@pytest.fixture(scope="module")
def pyxem_strain_map(pyxem_dataset):
    return _pyxem_strain_map(pyxem_dataset[0])


def test_set_signal_type_converts_pyxem_strain_map(pyxem_strain_map, pyxem_dataset):
    from pyxem.signals import StrainMap

    strain = pyxem_strain_map
    assert isinstance(strain, StrainMap)
    expected = from_pyxem(strain)
    s = strain.deepcopy()
    s.set_signal_type("strain_field")
    assert type(s) is hcm.StrainField
    np.testing.assert_allclose(s.data, expected.data, rtol=0, atol=1e-12)
    assert s.metadata.Chemomech.from_pyxem.via == "set_signal_type('strain_field')"
    assert s.metadata.Chemomech.from_pyxem.source == "StrainMap"
    assert s.axes_manager.navigation_axes[0].name == "component"
    # converted, not pyxem's numbers: first order those are (e22, e11, -e12, -theta)
    raw = np.asarray(strain.data)
    assert np.abs(s.data[0] - raw[0]).max() > 1e-3
    _check(s.data, pyxem_dataset[1], 0.25, "pyxem via set_signal_type")
    # converting twice changes nothing (the pyxem fingerprint is gone)
    again = s.deepcopy()
    again.set_signal_type("strain_field")
    np.testing.assert_array_equal(again.data, s.data)


def test_set_signal_type_refuses_rotated_pyxem_basis(pyxem_strain_map):
    from pyxem.signals import StrainMap

    rotated = pyxem_strain_map.rotate_strain_basis([1, 1])
    with pytest.raises(ValueError, match="StrainField.from_pyxem"):
        rotated.set_signal_type("strain_field")
    # never left as an unconverted StrainField: pyxem's class and basis are back
    assert isinstance(rotated, StrainMap) and not isinstance(rotated, hcm.StrainField)
    np.testing.assert_allclose(rotated.current_basis_x, [1, 1])


def test_set_signal_type_converts_displacement_gradient_map(rng):
    from pyxem.signals import DisplacementGradientMap

    comps = rng.normal(0, 0.02, (4, 3, 4))
    D = np.empty((3, 4, 3, 3))
    for idx in np.ndindex(3, 4):
        H = gradient_from_components(*comps[:, idx[0], idx[1]])
        D[idx] = np.eye(3)
        D[idx][:2, :2] = np.linalg.inv(np.eye(2) + H).T[::-1, ::-1].T  # pyxem's (ky, kx) D
    dgm = DisplacementGradientMap(D)
    for ax in dgm.axes_manager.navigation_axes:
        ax.units, ax.scale = "nm", 2.0
    expected = from_pyxem(dgm)
    np.testing.assert_allclose(expected.data, comps, atol=1e-12)
    dgm.set_signal_type("strain_field")
    assert type(dgm) is hcm.StrainField
    np.testing.assert_allclose(dgm.data, expected.data, rtol=0, atol=1e-12)
    assert dgm.metadata.Chemomech.from_pyxem.source == "DisplacementGradientMap"


# ------------------------------------------------- correlative_diffraction
def test_correlative_diffraction_from_pyxem_generator(pyxem_dataset):
    from pyxem.signals import ElectronDiffraction2D

    s, truth = pyxem_dataset
    dp = s.deepcopy()
    dp.set_signal_type("correlative_diffraction")
    assert type(dp).__name__ == "LazyCorrelativeDiffraction2D"
    assert isinstance(dp, ElectronDiffraction2D)  # every pyxem method kept
    assert dp.metadata.Signal.signal_type == "correlative_diffraction"
    sf = dp.get_strain_field(reference=((0, 1), (0, 1)))
    for i, name in enumerate(("e11", "e22", "e12", "theta")):
        rms = np.sqrt(np.mean((sf.data[i] - truth[i]) ** 2))
        assert rms <= 1e-3, (name, rms)
    # the disk radius was found from the direct beam (the generator's is 6 px)
    used = sf.metadata.Chemomech.strain_from_diffraction.disk_radius
    assert abs(used - 6) < 0.5
    # pyxem's own methods still run on it
    temp = dp.template_match_disk(disk_r=6, subtract_min=False)
    assert temp.axes_manager.navigation_shape == NAV


def test_correlative_diffraction_from_raw_signal_and_registration_image():
    from pyxem.signals import ElectronDiffraction2D

    from hyperspy_chemomech.diffraction._strain_from_diffraction import _detector_axes
    from hyperspy_chemomech.simulate import synthetic_4dstem

    raw, truth = synthetic_4dstem(scan_shape=(12, 12), detector_shape=(96, 96), dose=1e5,
                                  signal_type="")
    assert type(raw) is hs.signals.Signal2D
    dp = raw.deepcopy()
    dp.set_signal_type("correlative_diffraction")
    assert type(dp).__name__ == "CorrelativeDiffraction2D"
    assert isinstance(dp, ElectronDiffraction2D)
    img = dp.get_registration_image()
    sf = dp.get_strain_field(reference=truth["reference_mask"])
    # on the strain field's grid
    for a, b in zip(img.axes_manager.signal_axes, sf.axes_manager.signal_axes):
        assert (a.size, a.scale, a.offset, a.units) == (b.size, b.scale, b.offset, b.units)
    # the annular sum, computed here independently of pyxem's ROI machinery
    info = img.metadata.Chemomech.get_registration_image
    shape, _, center, _ = _detector_axes(dp)
    rows, cols = np.indices(shape)
    r = np.hypot(rows - center[0], cols - center[1])
    ring = (r >= info.inner_radius_px) & (r <= info.outer_radius_px)
    manual = np.asarray(raw.data)[..., ring].sum(axis=-1)
    np.testing.assert_allclose(img.data, manual, rtol=2e-2)
    # bright particle, dark vacuum: what registration needs
    m = truth["mask"]
    assert img.data[m].min() > 3 * img.data[~m].max()
    err = sf.data[:, m] - truth["components"][:, m]
    assert np.sqrt(np.mean(err ** 2)) < 1e-3


def test_correlative_diffraction_imports_pyxem_only_when_used():
    import pathlib
    import subprocess
    import sys

    code = (
        "import sys, numpy as np, hyperspy.api as hs, hyperspy_chemomech;"
        "s = hs.signals.Signal2D(np.zeros((2, 2, 8, 8)));"
        "s2 = hs.signals.Signal2D(np.zeros((4, 5, 5))); s2.set_signal_type('strain_field');"
        "before = 'pyxem' in sys.modules;"
        "s.set_signal_type('correlative_diffraction');"
        "print(before, 'pyxem' in sys.modules, type(s).__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=pathlib.Path(__file__).parents[1], timeout=300)
    assert out.stdout.split() == ["False", "True", "CorrelativeDiffraction2D"], out.stderr[-2000:]
