"""Decomposition of measured strain into reference, chemical, coherency and residual parts."""

import functools

import numpy as np
import pytest
from scipy import ndimage

from hyperspy_chemomech import mechanics
from hyperspy_chemomech.decomposition import chemical_strain, decompose
from hyperspy_chemomech.mechanics import (ParticleElasticity, get_material, isotropic_stiffness,
                                          plane_stiffness)
from hyperspy_chemomech.signals import StrainField
from hyperspy_chemomech.simulate import particle
from hyperspy_chemomech.simulate.particle import crystal_to_image_eigenstrain

# these tests learn and decompose with the homogeneous LiFePO4 stiffness, so the particles
# are made with it (the simulator's default is the package's default material, C(X))
make_particle = functools.partial(particle.make_particle, material="LiFePO4")

NOISE = 1e-3


@pytest.fixture(scope="module")
def clean_case():
    """No dislocations, composition at the strain grid's resolution, noise 1e-3."""
    p = make_particle(shape=(56, 84), pixel_size=5.0, noise=NOISE, seed=7, crystal_angle=0.2)
    strain, comp = p.strain_field(), p.composition_map()
    law = strain.learn_eigenstrain(comp, material="LiFePO4", crystal_angle=0.2, degree=1,
                                   show_progressbar=False)
    return p, strain, comp, law


@pytest.fixture(scope="module")
def clean_parts(clean_case):
    p, strain, comp, law = clean_case
    return strain.decompose(comp, law)


def _rms(a):
    return np.sqrt(np.nanmean(np.square(a)))


# -- the identity and the parts ---------------------------------------------------------
def test_parts_add_up_pixel_by_pixel(clean_case, clean_parts):
    p, strain, comp, law = clean_case
    d = clean_parts
    total = (d.reference[:, None, None] + d.chemical.data + d.coherency.data + d.residual.data)
    m = d.mask
    assert np.array_equal(m, p.mask)
    np.testing.assert_allclose(total[:, m], strain.data[:, m], rtol=0, atol=1e-15)
    for part in (d.chemical, d.coherency, d.residual):
        assert isinstance(part, StrainField)
        assert part.data.shape == strain.data.shape
        assert np.isnan(part.data[:, ~m]).all()
        assert part.axes_manager.signal_axes[0].scale == strain.axes_manager.signal_axes[0].scale
    # the chemical part is a pure eigenstrain: no rotation
    assert np.all(d.chemical.data[3][m] == 0)
    assert d.reference.shape == (4,)


def test_chemical_part_is_the_law_in_the_image_frame(clean_case, clean_parts):
    p, strain, comp, law = clean_case
    X = np.where(p.mask, p.X_observed, 0.0)
    truth = crystal_to_image_eigenstrain(p.law(X), p.crystal_angle)
    # the learned law is within a per cent of the truth
    err = _rms(clean_parts.chemical.data[:3][:, p.mask] - truth[:, p.mask]) / _rms(truth[:, p.mask])
    assert err < 0.01
    # and exactly the learned law, rotated
    mine = chemical_strain(law.evaluate, p.X_observed, p.mask, p.crystal_angle)
    np.testing.assert_allclose(clean_parts.chemical.data, mine, rtol=1e-12, atol=1e-15)


def test_residual_is_noise_when_composition_is_sharp(clean_case, clean_parts):
    """Must show: residual RMS within 20 % of the injected noise (nothing structural left)."""
    rms = clean_parts.summary()["rms"]["residual"]
    assert np.all(np.abs(rms / NOISE - 1) < 0.2), rms / NOISE
    # and it is white: its Nye content is noise only
    assert len(clean_parts.residual.find_dislocations()) <= 1


def test_reference_from_the_law_matches_the_injected_one(clean_case, clean_parts):
    p = clean_case[0]
    np.testing.assert_allclose(clean_parts.reference, p.reference, atol=2e-4)
    refit = clean_case[1].decompose(clean_case[2], clean_case[3], reference="fit")
    np.testing.assert_allclose(refit.reference, p.reference, atol=2e-4)
    assert refit.settings["reference_source"] == "fit"
    given = clean_case[1].decompose(clean_case[2], clean_case[3], reference=[0, 0, 0, 0])
    np.testing.assert_array_equal(given.reference, 0.0)


def test_coherency_stress_matches_forward_solution(clean_case, clean_parts):
    p = clean_case[0]
    q = plane_stiffness(get_material("LiFePO4").stiffness)
    eig = crystal_to_image_eigenstrain(p.law(np.where(p.mask, p.X_observed, 0.0)),
                                       p.crystal_angle)
    sol = ParticleElasticity(p.mask, 5.0, q, crystal_angle=p.crystal_angle).solve(
        eig, show_progressbar=False)
    m = p.mask
    st = clean_parts.stress
    assert st.data.shape == (3,) + m.shape
    assert st.metadata.Signal.quantity == "stress (GPa)"
    err = _rms(st.data[:, m] - sol.stress[:, m]) / _rms(sol.stress[:, m])
    assert err < 0.05
    # stress is C : coherency
    np.testing.assert_allclose(clean_parts.coherency.data[:3][:, m],
                               sol.elastic_strain[:, m], atol=5e-4)


def test_uniform_composition_gives_zero_coherency_and_stress():
    """A uniform eigenstrain in a free body is stress free (analytic)."""
    X = np.full((20, 30), np.nan)
    X[3:17, 4:26] = 0.6
    q = plane_stiffness(isotropic_stiffness(100.0, 0.3))

    def law(x):
        return np.stack([0.05 * x, -0.02 * x])

    strain = np.zeros((4, 20, 30))
    d = decompose(strain, X, 2.0, law, q, crystal_angle=0.4, show_progressbar=False)
    m = np.isfinite(X)
    assert np.nanmax(np.abs(d.stress)) < 1e-9
    assert np.nanmax(np.abs(d.coherency)) < 1e-12
    # the rotated misfit: e11 + e22 is invariant
    np.testing.assert_allclose(d.chemical[0][m] + d.chemical[1][m], 0.6 * 0.03)
    # a zero measurement is then entirely "reference + chemical + residual"
    np.testing.assert_allclose(d.residual[:, m] + d.reference[:, None], -d.chemical[:, m],
                               atol=1e-12)


def test_missing_data_inside_the_particle_stays_missing(clean_case):
    p, strain, comp, law = clean_case
    holes = strain.deepcopy()
    holes.data[:, 20:24, 30:34] = np.nan
    before = holes.data.copy()
    d = holes.decompose(comp, law)
    assert np.isnan(d.residual.data[:, 20:24, 30:34]).all()
    assert np.isfinite(d.chemical.data[:, 20:24, 30:34]).all()   # still in the body
    assert np.isfinite(d.coherency.data[:, 20:24, 30:34]).all()
    np.testing.assert_array_equal(holes.data, before)           # user data untouched


def _count_factorisations(monkeypatch):
    """Record every actual factorisation of a ParticleElasticity (not the cached no-ops)."""
    calls = []
    real = ParticleElasticity.factorize

    def counting(self):
        if self._factor is None:
            calls.append(self)
        return real(self)

    monkeypatch.setattr(ParticleElasticity, "factorize", counting)
    return calls


def test_decomposition_reuses_the_learning_factorisation(monkeypatch):
    calls = _count_factorisations(monkeypatch)
    mechanics.clear_solver_cache()
    p = make_particle(shape=(36, 54), pixel_size=4.0, noise=1e-4, seed=2)
    strain, comp = p.strain_field(), p.composition_map()
    law = strain.learn_eigenstrain(comp, degree=1, show_progressbar=False)
    n = len(calls)
    assert n >= 1
    strain.decompose(comp, law)
    assert len(calls) == n, "decompose factorised the stiffness again"


def test_summary_shares_add_up(clean_parts):
    s = clean_parts.summary()
    assert s["components"] == ["e11", "e22", "e12", "theta"]
    total = sum(s["variance_fraction"][k] for k in ("chemical", "coherency", "residual"))
    np.testing.assert_allclose(total, 1.0, atol=1e-9)
    assert s["variance_fraction"]["chemical"][3] == 0.0
    m = clean_parts.mask
    np.testing.assert_allclose(s["rms"]["coherency"][0],
                               np.sqrt(np.mean(clean_parts.coherency.data[0][m] ** 2)))
    assert "share of the measured variance" in str(s)


def test_plot_overview(clean_parts):
    import matplotlib.pyplot as plt

    fig = clean_parts.plot()
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 16
    # shared colour limits along each component (column)
    for c in range(4):
        lims = {images[r * 4 + c].images[0].get_clim() for r in range(4)}
        assert len(lims) == 1
    assert any(type(a).__name__ == "AnchoredSizeBar" for a in images[0].artists)
    plt.close(fig)
    fig = clean_parts.plot(parts=("residual", "stress"))
    assert len([ax for ax in fig.axes if ax.images]) == 7
    plt.close(fig)
    with pytest.raises(ValueError, match="unknown"):
        clean_parts.plot(parts=("nonsense",))


# -- blurred composition: the residual at the matched resolution ------------------------
def test_blurred_composition_reports_matched_residual():
    p = make_particle(shape=(56, 84), pixel_size=5.0, noise=NOISE, seed=7, blur_factor=4)
    strain, comp = p.strain_field(), p.composition_map()
    law = strain.learn_eigenstrain(comp, material="LiFePO4", degree=1, show_progressbar=False)
    sigma = float(law.metadata.Chemomech.law.resolution_sigma_px)
    assert sigma > 0
    d = strain.decompose(comp, law)
    assert d.residual_matched is not None
    rms = d.summary()["rms"]
    # the sharp residual carries the composition blur; matched to the X-ray resolution
    # most of it goes
    assert np.all(rms["residual_matched"] < 0.7 * rms["residual"])
    # away from the edge (where blurring and the free-body solve do not commute) the
    # matched residual is a quarter of the sharp one; what stays is the difference
    # between the simulated X-ray blur (block average + bilinear) and a Gaussian
    inner = ndimage.binary_erosion(d.mask, iterations=int(np.ceil(3 * sigma)))

    def inner_rms(r):
        return np.sqrt(np.nanmean(r.data[:, inner] ** 2, axis=1))

    assert np.all(inner_rms(d.residual_matched) < 0.3 * inner_rms(d.residual))


# -- bad input -------------------------------------------------------------------------
def test_grid_and_calibration_mismatch(clean_case):
    p, strain, comp, law = clean_case
    with pytest.raises(ValueError, match="grid"):
        strain.decompose(comp.isig[:-2, :], law)
    other = comp.deepcopy()
    for ax in other.axes_manager.signal_axes:
        ax.scale = 4.0
    with pytest.raises(ValueError, match="pixel size"):
        strain.decompose(other, law)
    coarse = strain.deepcopy()
    for ax in coarse.axes_manager.signal_axes:
        ax.scale = 4.0
    for ax in other.axes_manager.signal_axes:
        ax.offset = 0.0
    with pytest.raises(ValueError, match="learned on a 5 nm grid"):
        coarse.decompose(other, law)
    with pytest.raises(TypeError, match="EigenstrainLaw"):
        strain.decompose(comp, p.law)


def test_settings_other_than_learned_need_override(clean_case):
    p, strain, comp, law = clean_case
    with pytest.raises(ValueError, match="crystal_angle"):
        strain.decompose(comp, law, crystal_angle=0.0)
    with pytest.raises(ValueError, match="material"):
        strain.decompose(comp, law, material="FePO4")
    with pytest.raises(ValueError, match="plane"):
        strain.decompose(comp, law, plane="strain")
    d = strain.decompose(comp, law, material="FePO4", override=True)
    assert d.settings["material"] == "FePO4" and d.settings["override"]
    # a different stiffness gives a different stress, same identity
    total = d.reference[:, None, None] + d.chemical.data + d.coherency.data + d.residual.data
    np.testing.assert_allclose(total[:, p.mask], strain.data[:, p.mask], atol=1e-15)
    # the same settings, given explicitly, are fine
    strain.decompose(comp, law, material="LiFePO4", crystal_angle=0.2, plane="stress")


def test_numpy_decompose_rejects_bad_input():
    X = np.full((10, 12), np.nan)
    X[2:8, 2:10] = 0.5

    def law(x):
        return np.stack([0.05 * x, -0.02 * x])

    q = plane_stiffness(isotropic_stiffness(100.0, 0.3))
    good = np.zeros((4, 10, 12))
    with pytest.raises(ValueError, match="shape"):
        decompose(np.zeros((3, 10, 12)), X, 1.0, law, q)
    with pytest.raises(ValueError, match="grid"):
        decompose(good, X[:, :-1], 1.0, law, q)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        decompose(good, np.where(np.isfinite(X), 1.5, np.nan), 1.0, law, q)
    with pytest.raises(ValueError, match="empty"):
        decompose(good, np.full((10, 12), np.nan), 1.0, law, q)
    with pytest.raises(ValueError, match="reference"):
        decompose(good, X, 1.0, law, q, reference=[0, 0, 0])
    with pytest.raises(ValueError, match="components"):
        decompose(good, X, 1.0, lambda x: x[None], q)
    with pytest.raises(ValueError, match="infinite"):
        decompose(np.full((4, 10, 12), np.inf), X, 1.0, law, q)


def test_composition_dependent_stiffness_and_saved_law(tmp_path, monkeypatch):
    """C(X) between the end members: the law's pair is used, reused, and survives saving."""
    import hyperspy.api as hs

    p = make_particle(shape=(40, 60), pixel_size=5.0, noise=1e-4, seed=2,
                      stiffness="composition")
    strain, comp = p.strain_field(), p.composition_map()
    law = strain.learn_eigenstrain(comp, material=("FePO4", "LiFePO4"), degree=1,
                                   show_progressbar=False)
    law.save(tmp_path / "law.hspy")
    loaded = hs.load(tmp_path / "law.hspy")
    calls = _count_factorisations(monkeypatch)
    d = strain.decompose(comp, loaded)
    assert not calls
    q = tuple(plane_stiffness(get_material(m).stiffness) for m in ("FePO4", "LiFePO4"))
    eig = crystal_to_image_eigenstrain(p.law(np.where(p.mask, p.X_true, 0.0)), 0.0)
    sol = ParticleElasticity(p.mask, 5.0, q, composition=np.where(p.mask, p.X_true, 0.0)).solve(
        eig, show_progressbar=False)
    m = p.mask
    assert _rms(d.stress.data[:, m] - sol.stress[:, m]) < 0.01 * _rms(sol.stress[:, m])
    with pytest.raises(ValueError, match="material"):
        strain.decompose(comp, loaded, material="LiFePO4")
    # the parts are StrainFields that save and load with their provenance
    d.residual.save(tmp_path / "residual.hspy")
    back = hs.load(tmp_path / "residual.hspy")
    assert isinstance(back, StrainField)
    assert back.metadata.Chemomech.decomposition.part == "residual"
    np.testing.assert_allclose(back.metadata.Chemomech.decomposition.reference, d.reference)


def test_shear_component_of_the_law_enters_the_chemical_part():
    X = np.full((12, 16), np.nan)
    X[2:10, 2:14] = 0.5

    def law(x):
        return np.stack([0.0 * x, 0.0 * x, 0.02 * x])

    chem = chemical_strain(law, X, np.isfinite(X), crystal_angle=0.0)
    m = np.isfinite(X)
    np.testing.assert_allclose(chem[2][m], 0.01)
    np.testing.assert_allclose(chem[:2][:, m], 0.0)
    # rotated by 45 degrees a pure shear becomes normal strains
    chem = chemical_strain(law, X, m, crystal_angle=np.pi / 4)
    np.testing.assert_allclose(chem[0][m], -0.01, atol=1e-15)
    np.testing.assert_allclose(chem[1][m], 0.01, atol=1e-15)


def test_numpy_decompose_accepts_a_law_object(clean_case):
    p, strain, comp, law = clean_case
    q = plane_stiffness(get_material("LiFePO4").stiffness)
    ref = np.asarray(law.metadata.Chemomech.law.reference_strain)
    a = decompose(strain.data, comp.data, 5.0, law, q, crystal_angle=0.2, reference=ref)
    b = decompose(strain.data, comp.data, 5.0, law.evaluate, q, crystal_angle=0.2, reference=ref)
    np.testing.assert_array_equal(a.residual, b.residual)
    with pytest.raises(TypeError, match="callable"):
        decompose(strain.data, comp.data, 5.0, 0.05, q)


def test_law_without_rotation_data_fits_the_theta_reference():
    p = make_particle(shape=(40, 60), pixel_size=5.0, noise=1e-4, seed=4)
    strain, comp = p.strain_field(), p.composition_map()
    law = strain.learn_eigenstrain(comp, material="LiFePO4", degree=1, use_rotation=False,
                                   show_progressbar=False)
    d = strain.decompose(comp, law)
    assert "theta" in d.settings["reference_source"]
    np.testing.assert_allclose(d.reference, p.reference, atol=5e-5)
    total = d.reference[:, None, None] + d.chemical.data + d.coherency.data + d.residual.data
    np.testing.assert_allclose(total[:, p.mask], strain.data[:, p.mask], atol=1e-15)


def test_handmade_law_without_fit_metadata(clean_case):
    """A tabulated law (no learning metadata): the given settings are used, reference fitted."""
    from hyperspy_chemomech.signals import EigenstrainLaw

    p, strain, comp, _ = clean_case
    grid = np.linspace(0, 1, 101)
    law = EigenstrainLaw(p.law(grid))
    law.axes_manager.signal_axes[0].scale = 0.01
    d = strain.decompose(comp, law, material="LiFePO4", crystal_angle=0.2)
    assert d.settings["reference_source"] == "fit"
    np.testing.assert_allclose(d.reference, p.reference, atol=2e-4)
    rms = d.summary()["rms"]["residual"]
    assert np.all(np.abs(rms / NOISE - 1) < 0.2)


def test_window_that_cuts_the_particle_decomposes_with_a_held_edge():
    """Learned and decomposed with boundary='dirichlet': the residual is the noise."""
    p = make_particle(shape=(100, 160), noise=1e-3, n_dislocations=0, blur_factor=1, seed=0)
    ys, xs = np.nonzero(p.mask)
    cy, cx = int(ys.mean()), int(xs.mean())
    win = (slice(cx - 45, cx + 45), slice(cy - 22, cy + 22))
    strain, comp = p.strain_field().isig[win], p.composition_map().isig[win]
    law = strain.learn_eigenstrain(comp, material="LiFePO4", degree=1,
                                   composition_resolution=0.0, boundary="dirichlet")
    parts = strain.decompose(comp, law)          # the law's boundary by default
    rms = np.array(parts.summary()["rms"]["residual"])
    np.testing.assert_allclose(rms, 1e-3, rtol=0.1)
    free = strain.decompose(comp, law, boundary="free", override=True)
    assert np.all(np.array(free.summary()["rms"]["residual"]) > 1.5e-3)
    with pytest.raises(ValueError, match="boundary"):
        strain.decompose(comp, law, boundary="free")   # differs from the law's
    total = parts.reference[:, None, None] + (parts.chemical + parts.coherency
                                              + parts.residual).data
    np.testing.assert_allclose(total, strain.data, atol=1e-15)
