"""XrayAbsorptionSpectrum -> CompositionMap on synthetic stacks with known truth."""

import numpy as np
import pytest

import hyperspy.api as hs

from hyperspy_chemomech.signals import CompositionMap, XrayAbsorptionSpectrum
from hyperspy_chemomech.simulate import fe_l_edge_references, synthetic_xray_stack
from hyperspy_chemomech.simulate.xray_stack import truth_on_aligned_grid


def _rms_inside(comp, X_true, mask):
    e = np.asarray(comp.data)[mask] - X_true[mask]
    assert np.isfinite(e).all(), "NaN inside the particle"
    return float(np.sqrt(np.mean(e**2)))


@pytest.fixture(scope="module")
def small():
    """48 x 48 px, 60 energies (non-uniform), no drift."""
    return synthetic_xray_stack(shape=(48, 48), n_energies=60, max_drift=0.0, seed=3)


@pytest.fixture(scope="module")
def small_od(small):
    return small[0].to_optical_density()


# ------------------------------------------------------------------ must show
def test_must_show_128px_100_energies_drift_5px():
    """128 x 128 px, 100 energies, I0 = 1e4, Poisson, drift up to 5 px."""
    stack, truth = synthetic_xray_stack(shape=(128, 128), n_energies=100, i0=1e4,
                                        max_drift=5.0, seed=7)
    assert np.abs(truth["drift"]).max() == pytest.approx(5.0)
    assert not stack.axes_manager[-1].is_uniform  # fine steps across the edge
    od = stack.to_optical_density()
    shifts = od.align_energies()
    aligned = truth_on_aligned_grid(truth, shifts)
    assert np.abs(aligned["drift_error"]).max() <= 0.2
    comp = od.get_composition_map(truth["references"])
    assert _rms_inside(comp, aligned["X"], aligned["mask"]) <= 0.03
    np.testing.assert_allclose(od.metadata.Chemomech.align_energies.shifts, shifts)


# --------------------------------------------------------- optical density
def test_auto_i0_finds_flux_and_reports_pixels(small, small_od):
    stack, truth = small
    info = small_od.metadata.Chemomech.optical_density
    assert info.i0_source == "auto"
    bg = np.asarray(info.background_mask)
    assert bg.sum() == info.n_background_pixels > 100
    assert not (bg & truth["mask"]).any()
    np.testing.assert_allclose(info.i0, truth["i0"], rtol=3e-3)
    assert isinstance(small_od, XrayAbsorptionSpectrum) and small_od.is_optical_density
    with pytest.raises(ValueError, match="already"):
        small_od.to_optical_density()


def test_i0_number_spectrum_and_mask_agree(small):
    stack, truth = small
    bg = ~truth["mask"]
    by_mask = stack.to_optical_density(i0=bg)
    by_spec = stack.to_optical_density(i0=truth["i0"])
    by_num = stack.to_optical_density(i0=1e4)
    assert by_mask.metadata.Chemomech.optical_density.i0_source == "mask"
    inside = truth["mask"]
    # flux varies +-10 %: a flat I0 is off by ln(flux/1e4), the spectrum is exact
    od_true = truth["od"][inside]
    assert np.abs(by_spec.data[inside] - od_true).mean() < 0.02
    assert np.abs(by_mask.data[inside] - od_true).mean() < 0.02
    assert np.abs(by_num.data[inside] - od_true).mean() > 0.03


@pytest.mark.parametrize("bad", [np.nan, 0.0, -3.0])
def test_bad_intensities_raise_and_data_untouched(small, bad):
    stack = small[0].deepcopy()
    stack.data[3, 4, 5] = bad
    before = stack.data.copy()
    with pytest.raises(ValueError, match="intensity"):
        stack.to_optical_density(i0=1e4)
    np.testing.assert_array_equal(stack.data, before)


@pytest.mark.parametrize("i0", [0.0, -1e4, np.nan])
def test_bad_i0_raises(small, i0):
    with pytest.raises(ValueError, match="I0"):
        small[0].to_optical_density(i0=i0)


def test_bad_i0_shapes_raise(small):
    stack = small[0]
    with pytest.raises(ValueError, match="one value per energy"):
        stack.to_optical_density(i0=np.ones(7))
    with pytest.raises(ValueError, match="mask shape"):
        stack.to_optical_density(i0=np.ones((5, 5), dtype=bool))
    with pytest.raises(ValueError, match="unknown i0"):
        stack.to_optical_density(i0="median")


def test_non_ev_and_non_monotonic_energy_axes_raise(small):
    kev = small[0].deepcopy()
    kev.axes_manager[-1].units = "keV"
    with pytest.raises(ValueError, match="eV"):
        kev.to_optical_density()
    decreasing = XrayAbsorptionSpectrum(
        small[0].data.copy(),
        axes=[{"size": 48}, {"size": 48}, {"axis": np.linspace(730, 700, 60), "units": "eV"}])
    negative_scale = XrayAbsorptionSpectrum(
        small[0].data.copy(),
        axes=[{"size": 48}, {"size": 48},
              {"size": 60, "offset": 730.0, "scale": -0.5, "units": "eV"}])
    for bad in (decreasing, negative_scale):
        before = bad.data.copy()
        for call in (bad.to_optical_density, bad.align_energies):
            with pytest.raises(ValueError, match="strictly increasing"):
                call()
        np.testing.assert_array_equal(bad.data, before)


# ---------------------------------------------------------- composition map
def test_composition_nnls_and_lstsq_on_nonuniform_axis(small, small_od):
    stack, truth = small
    assert not small_od.axes_manager[-1].is_uniform
    for method in ("nnls", "lstsq"):
        comp = small_od.get_composition_map(truth["references"], method=method)
        assert isinstance(comp, CompositionMap)
        assert _rms_inside(comp, truth["X"], truth["mask"]) < 0.03
        assert np.isnan(np.asarray(comp.data)[~comp.particle_mask]).all()
        # the automatic mask is the particle, up to its faint rim
        assert (comp.particle_mask != truth["mask"]).mean() < 0.01
    nn = small_od.get_composition_map(truth["references"])
    X = np.asarray(nn.data)[nn.particle_mask]
    assert X.min() >= 0 and X.max() <= 1
    # thickness: sum of the coefficients, in nm (references in 1/nm)
    th = nn.thickness.data[truth["mask"]]
    assert np.median(np.abs(th - truth["thickness"][truth["mask"]])) < 3.0


def test_uncertainty_predicts_the_error(small, small_od):
    stack, truth = small
    comp = small_od.get_composition_map(truth["references"])
    assert comp.metadata.Chemomech.composition_map.noise == "poisson"
    m = truth["mask"]
    err = np.asarray(comp.data)[m] - truth["X"][m]
    sig = comp.uncertainty.data[m]
    z = err / sig
    # standardised errors of unbiased, well-modelled estimates: unit spread
    assert 0.75 < np.std(z) < 1.3
    res = comp.residual.data[m]
    assert np.all(res > 0) and np.median(res) < 0.05


def test_references_interpolated_and_energy_shift_fitted(small, small_od):
    stack, truth = small
    fine = np.linspace(695.0, 735.0, 801)
    fp, lfp = fe_l_edge_references(fine)
    for r in (fp, lfp):  # references measured on a scale 0.4 eV high
        r.axes_manager[-1].offset += 0.4
    plain = small_od.get_composition_map([fp, lfp])
    fitted = small_od.get_composition_map([fp, lfp], energy_shift="fit")
    info = fitted.metadata.Chemomech.composition_map
    assert info.energy_shift == pytest.approx(-0.4, abs=0.03)
    assert info.energy_shift_source == "fit"
    assert _rms_inside(fitted, truth["X"], truth["mask"]) < 0.03
    assert _rms_inside(plain, truth["X"], truth["mask"]) > 0.05


def test_references_must_cover_the_data(small_od, small):
    e = small[1]["energies"]
    fp, lfp = fe_l_edge_references(e[e < 725])
    with pytest.raises(ValueError, match="covers"):
        small_od.get_composition_map([fp, lfp])


def test_reference_masks_from_the_data(small, small_od):
    stack, truth = small
    m, X = truth["mask"], truth["X"]
    lo, hi = 0.05, 0.95  # the end-member compositions of the synthetic field
    fp_region = m & (np.abs(np.nan_to_num(X) - lo) < 1e-3)
    lfp_region = m & (np.abs(np.nan_to_num(X) - hi) < 1e-3)
    assert fp_region.sum() > 20 and lfp_region.sum() > 20
    comp = small_od.get_composition_map([fp_region, lfp_region])
    # X measured on the scale of the two regions: (X - lo) / (hi - lo)
    assert _rms_inside(comp, (X - lo) / (hi - lo), m) < 0.04
    with pytest.raises(ValueError, match="shape"):
        small_od.get_composition_map([fp_region[:10], lfp_region])
    with pytest.raises(ValueError, match="all spectra"):
        small_od.get_composition_map([fp_region, truth["references"][1]])


def test_composition_map_input_errors(small, small_od):
    stack, truth = small
    before = small_od.data.copy()
    with pytest.raises(ValueError, match="optical density"):
        stack.get_composition_map(truth["references"])
    with pytest.raises(ValueError, match="at least two"):
        small_od.get_composition_map([truth["references"][0]])
    with pytest.raises(ValueError, match="unknown method"):
        small_od.get_composition_map(truth["references"], method="ridge")
    with pytest.raises(ValueError, match="mask shape"):
        small_od.get_composition_map(truth["references"], mask=np.ones((3, 3), bool))
    ev_less = [r.deepcopy() for r in truth["references"]]
    ev_less[0].axes_manager[-1].units = "keV"
    with pytest.raises(ValueError, match="reference 0"):
        small_od.get_composition_map(ev_less)
    with pytest.raises(TypeError, match="boolean"):
        small_od.get_composition_map(truth["references"], mask=np.ones((48, 48)))
    np.testing.assert_array_equal(small_od.data, before)


def test_explicit_mask_and_threshold(small, small_od):
    stack, truth = small
    comp = small_od.get_composition_map(truth["references"], mask=truth["mask"])
    np.testing.assert_array_equal(comp.particle_mask, truth["mask"])
    thick = small_od.get_composition_map(truth["references"], threshold=80.0)
    assert thick.particle_mask.sum() < comp.particle_mask.sum()
    assert thick.metadata.Chemomech.composition_map.threshold == 80.0


# ----------------------------------------------------------------- the map
def test_summary_histogram_plot(small, small_od):
    stack, truth = small
    comp = small_od.get_composition_map(truth["references"])
    s = comp.summary()
    Xin = truth["X"][comp.particle_mask]
    assert s["n_pixels"] == comp.particle_mask.sum()
    assert s["mean"] == pytest.approx(np.nanmean(Xin), abs=0.01)
    assert 0 < s["mean_uncertainty"] < 0.05
    h = comp.histogram(bins=20)
    assert h.data.sum() == s["n_pixels"] and h.axes_manager[0].size == 20
    comp.plot()
    im = comp._plot.signal_plot.ax.images[0]
    assert im.get_cmap().name == "RdBu_r"
    assert im.get_clim() == (0.0, 1.0)
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.parametrize("ext", ["hspy", "zspy"])
def test_save_load_keeps_carried_maps(tmp_path, small, small_od, ext):
    stack, truth = small
    comp = small_od.get_composition_map(truth["references"])
    comp.save(tmp_path / f"c.{ext}")
    back = hs.load(tmp_path / f"c.{ext}")
    assert isinstance(back, CompositionMap)
    np.testing.assert_array_equal(back.particle_mask, comp.particle_mask)
    np.testing.assert_allclose(back.thickness.data, comp.thickness.data)
    np.testing.assert_allclose(back.uncertainty.data, comp.uncertainty.data)
    assert back.coefficients.axes_manager.navigation_shape == (2,)
    assert back.metadata.Chemomech.composition_map.method == "nnls"
    cropped = back.isig[:10, :10]
    # the carried maps follow the crop (issue 15), they are no longer left behind
    np.testing.assert_allclose(cropped.thickness.data, comp.thickness.data[:10, :10])
    np.testing.assert_array_equal(cropped.particle_mask, comp.particle_mask[:10, :10])


def test_plain_array_composition_map_has_no_carried_maps():
    X = np.full((4, 5), 0.3)
    X[0] = np.nan
    c = hs.signals.Signal2D(X)
    c.set_signal_type("composition_map")
    assert c.particle_mask.sum() == 15
    with pytest.raises(AttributeError, match="thickness"):
        c.thickness


# --------------------------------------------------------------------- lazy
def test_lazy_stack_gives_same_result(small):
    stack, truth = synthetic_xray_stack(shape=(40, 40), n_energies=40, max_drift=2.0, seed=5)
    eager = stack.to_optical_density()
    lazy = stack.as_lazy()
    lazy.data = lazy.data.rechunk((20, 20, 20))
    lod = lazy.to_optical_density()
    assert lod._lazy and hasattr(lod.data, "dask")
    np.testing.assert_allclose(lod.data.compute(), eager.data)
    s_e = eager.align_energies()
    s_l = lod.align_energies()
    assert lod._lazy
    np.testing.assert_allclose(s_l, s_e, atol=1e-9)
    np.testing.assert_allclose(lod.data.compute(), eager.data, equal_nan=True, atol=1e-12)
    c_e = eager.get_composition_map(truth["references"])
    c_l = lod.get_composition_map(truth["references"], energy_shift=0.0)
    np.testing.assert_allclose(np.asarray(c_l.data), np.asarray(c_e.data), equal_nan=True,
                               atol=1e-12)
    np.testing.assert_allclose(c_l.uncertainty.data, c_e.uncertainty.data, equal_nan=True)


def test_lazy_loaded_composition_map(tmp_path, small, small_od):
    stack, truth = small
    comp = small_od.get_composition_map(truth["references"])
    comp.save(tmp_path / "c.hspy")
    lz = hs.load(tmp_path / "c.hspy", lazy=True)
    assert lz._lazy and isinstance(lz, CompositionMap)
    assert lz.summary() == comp.summary()
    np.testing.assert_allclose(lz.thickness.data, comp.thickness.data)


def test_three_references_nnls(small, small_od):
    """A third end member absent from the particle gets ~0; X is the last's fraction."""
    stack, truth = small
    fp, lfp = truth["references"]
    e = truth["energies"]
    other = fp.deepcopy()
    other.data = 0.004 * np.exp(-0.5 * ((e - 715.0) / 3.0) ** 2) + 0.001
    other.metadata.General.title = "other"
    comp = small_od.get_composition_map([fp, other, lfp])
    coef = comp.coefficients.data  # (3, y, x)
    m = truth["mask"]
    assert coef.shape[0] == 3 and (coef[:, m] >= 0).all()
    assert np.median(coef[1][m]) < 1.0 < np.median(coef[0][m] + coef[2][m])
    assert _rms_inside(comp, truth["X"], m) < 0.04


def test_lazy_stack_is_read_once_by_get_composition_map(small):
    """The lazy route reads each chunk once: the type check reads no data and the
    Poisson errors come from the fitted amounts, not from a second pass (#16)."""
    import dask.array as da

    stack, truth = synthetic_xray_stack(shape=(40, 40), n_energies=40, max_drift=0.0, seed=5)
    lod = stack.as_lazy().to_optical_density()
    reads = []

    def count(block):
        if block.size:                      # dask's meta probe is an empty block
            reads.append(block.shape)
        return block

    lod.data = da.map_blocks(count, lod.data.rechunk((20, 20, 40)), dtype=float)
    reads.clear()
    comp = lod.get_composition_map(truth["references"], energy_shift=0.0)
    assert comp.metadata.Chemomech.composition_map.noise == "poisson"
    assert len(reads) == 4, reads


def test_lazy_alignment_reads_each_chunk_once_per_pass():
    """align_energies on a lazy stack computes frames in batches of whole chunks: each
    chunk is read once per pass (mean, registration; twice each with n_iter=2), not once
    per frame (which reads a chunk spanning 20 energies 20 times)."""
    import dask.array as da

    stack, truth = synthetic_xray_stack(shape=(40, 40), n_energies=40, max_drift=2.0, seed=5)
    eager = stack.to_optical_density()
    lod = stack.as_lazy().to_optical_density()
    reads = []

    def count(block):
        if block.size:
            reads.append(block.shape)
        return block

    lod.data = da.map_blocks(count, lod.data.rechunk((20, 20, 20)), dtype=float)
    reads.clear()
    shifts = lod.align_energies(n_iter=2)
    assert len(reads) <= 4 * 8, len(reads)           # 8 chunks, 4 passes
    np.testing.assert_allclose(shifts, eager.align_energies(n_iter=2), atol=1e-9)


def test_make_composition_map_names_a_mismatched_array():
    from hyperspy.axes import UniformDataAxis

    from hyperspy_chemomech.signals.composition_map import make_composition_map

    nav = [UniformDataAxis(size=6, scale=10.0, units="nm", name=n, navigate=True)
           for n in ("x", "y")]
    X = np.full((6, 6), 0.5)
    thick = np.ones((5, 6))
    with pytest.raises(ValueError, match="thickness has shape"):
        make_composition_map(X, nav, np.ones((6, 6), bool), thickness=thick)
    with pytest.raises(TypeError, match="unknown composition map arrays"):
        make_composition_map(X, nav, np.ones((6, 6), bool), thikness=np.ones((6, 6)))
    assert thick.shape == (5, 6) and np.all(X == 0.5)
    c = make_composition_map(X, nav, np.eye(6, dtype=bool), thickness=np.ones((6, 6)))
    assert np.isnan(c.data[0, 1]) and c.data[0, 0] == 0.5
