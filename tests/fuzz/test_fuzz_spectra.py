"""Fuzz set (issue 15): the X-ray stack surface, bad and unusual input.

make_stack, XrayAbsorptionSpectrum.to_optical_density / align_energies /
get_composition_map, and HyperSpy's isig / crop / rebin on a stack. Each case has
its oracle: the error it must raise (naming the problem) or the truth it must meet.
"""

import numpy as np
import pytest
from _oracles import expect_error, expect_truth, run_truth, unchanged

from hyperspy_chemomech.signals.xray_absorption import make_stack
from hyperspy_chemomech.simulate import fe_l_edge_references, synthetic_xray_stack


@pytest.fixture(scope="module")
def small():
    """32 x 32 px, 40 energies (non-uniform), no drift, its truth."""
    return synthetic_xray_stack(shape=(32, 32), n_energies=40, max_drift=0.0, seed=1)


@pytest.fixture(scope="module")
def od(small):
    return small[0].to_optical_density()


@pytest.fixture(scope="module")
def refs(small):
    return small[1]["references"]


@pytest.fixture(scope="module")
def wide_refs():
    """The end members on 695-735 eV: wider than the data, so a shift can be fitted."""
    fine = np.linspace(695.0, 735.0, 801)
    return fe_l_edge_references(fine)


def _rms(comp, truth):
    m = truth["mask"] & np.isfinite(np.asarray(comp.data))
    return float(np.sqrt(np.mean((np.asarray(comp.data)[m] - truth["X"][m]) ** 2)))


def _spectrum(energies, values, title="ref"):
    import hyperspy.api as hs

    s = hs.signals.Signal1D(np.asarray(values))
    ax = s.axes_manager[-1]
    e = np.asarray(energies, float)
    ax.offset, ax.scale, ax.units = float(e[0]), float(e[1] - e[0]), "eV"
    s.metadata.General.title = title
    return s


# ----------------------------------------------------------------- make_stack
E = np.linspace(700.0, 730.0, 12)


@pytest.mark.parametrize("case", ["complex", "pixel0", "pixel-1", "pixelnan", "pixelinf",
                                  "decreasing", "nan_energy", "shape", "2d", "repeated"])
def test_make_stack_bad_input(case):
    data = np.ones((8, 8, E.size))
    kw = {}
    e = E
    names = ()
    if case == "complex":
        data = data + 1j
        names = ("complex",)
    elif case.startswith("pixel"):
        kw["pixel_size"] = {"pixel0": 0.0, "pixel-1": -1.0, "pixelnan": np.nan,
                            "pixelinf": -np.inf}[case]
        names = ("pixel_size",)
    elif case == "decreasing":
        e = E[::-1]
        names = (("increasing",),)
    elif case == "nan_energy":
        e = E.copy()
        e[3] = np.nan
        names = (("finite", "nan"),)
    elif case == "repeated":
        e = E.copy()
        e[3] = e[2]
        names = (("increasing",),)
    elif case == "shape":
        data = np.ones((8, 8, E.size + 1))
        names = ("shape",)
    elif case == "2d":
        data = np.ones((8, E.size))
        names = ("shape",)
    with unchanged(data, e):
        expect_error(make_stack, data, e, names=names, **kw)


# ---------------------------------------------------------- to_optical_density
@pytest.mark.parametrize("i0, names", [
    (0.0, ("I0",)), (-1.0, ("I0",)), (np.nan, ("I0",)), (np.inf, ("I0",)),
    ("median", ("i0",)), (True, ("i0",)), (np.ones(5), ("energy",)),
    (np.zeros((32, 32), bool), ("mask",)), (np.ones((4, 4), bool), ("shape",)),
])
def test_to_optical_density_bad_i0(small, i0, names):
    stack = small[0]
    with unchanged(stack):
        expect_error(stack.to_optical_density, i0=i0, names=names)


def test_to_optical_density_twice(od):
    with unchanged(od):
        expect_error(od.to_optical_density, names=("optical density",))


@pytest.mark.parametrize("bad", [0.0, -5.0, np.nan])
def test_to_optical_density_bad_counts(small, bad):
    stack = small[0].deepcopy()
    stack.data[3, 4, 5] = bad
    with unchanged(stack):
        expect_error(stack.to_optical_density, names=(("zero", "negative", "nan", "positive",
                                                       "finite", "intensit"),))


def test_to_optical_density_complex(small):
    stack = small[0].deepcopy()
    stack.data = stack.data.astype(complex)
    with unchanged(stack):
        expect_error(stack.to_optical_density, names=("complex",))


def test_to_optical_density_correct(small):
    stack, truth = small
    with unchanged(stack):
        od = run_truth(stack.to_optical_density)
    err = np.abs(np.asarray(od.data) - truth["od"])[truth["mask"]]
    expect_truth(np.median(err) < 0.05, f"OD off the truth by {np.median(err):.3g}")


# ------------------------------------------------------------- align_energies
ALIGN_BAD = [
    ({"sigma": -1.0}, ("sigma",)), ({"sigma": np.nan}, ("sigma",)), ({"sigma": np.inf}, ("sigma",)),
    ({"sigma": "wide"}, ("sigma",)), ({"upsample": 0}, ("upsample",)),
    ({"upsample": -3}, ("upsample",)), ({"upsample": 2.5}, ("upsample",)),
    ({"upsample": True}, ("upsample",)), ({"order": -1}, ("order",)), ({"order": 6}, ("order",)),
    ({"order": 7}, ("order",)), ({"order": 2.5}, ("order",)), ({"n_iter": 0}, ("n_iter",)),
    ({"n_iter": -1}, ("n_iter",)), ({"smooth": -1.0}, ("smooth",)),
    ({"smooth": np.nan}, ("smooth",)), ({"features": "corners"}, ("features",)),
    ({"reference": "median"}, ("reference",)), ({"reference": 999}, ("reference",)),
    ({"reference": np.ones((5, 5))}, ("reference",)),
]


@pytest.mark.parametrize("kwargs, names", ALIGN_BAD, ids=[str(k) for k, _ in ALIGN_BAD])
def test_align_energies_bad_options(od, kwargs, names):
    s = od.deepcopy()
    with unchanged(s):
        expect_error(s.align_energies, names=names, **kwargs)


@pytest.mark.parametrize("shape", [(1, 3), (3, 3), (3, 40), (8, 8), (15, 32)])
def test_align_energies_tiny_stack(shape):
    rng = np.random.default_rng(0)
    data = rng.uniform(0.5, 1.5, shape + (6,))
    s = make_stack(data, np.linspace(700, 710, 6), quantity="Optical density")
    with unchanged(s):
        expect_error(s.align_energies, names=(("px", "small"),))


@pytest.mark.parametrize("frame", [0, 7, -1])
def test_align_energies_nan_frame(od, frame):
    s = od.deepcopy()
    s.data[..., frame] = np.nan
    with unchanged(s):
        expect_error(s.align_energies, names=("frame",))


def test_align_energies_single_energy(od):
    s = od.isig[0:1]
    with unchanged(s):
        expect_error(s.align_energies, names=(("energy", "frames"),))


def test_align_energies_complex(od):
    s = od.deepcopy()
    s.data = s.data.astype(complex)
    with unchanged(s):
        expect_error(s.align_energies, names=("complex",))


def test_align_energies_known_drift():
    stack, truth = synthetic_xray_stack(shape=(40, 40), n_energies=30, max_drift=2.0, seed=5)
    s = stack.to_optical_density()
    shifts = run_truth(s.align_energies)
    from hyperspy_chemomech.simulate.xray_stack import truth_on_aligned_grid

    err = np.abs(truth_on_aligned_grid(truth, shifts)["drift_error"]).max()
    expect_truth(err < 0.3, f"drift error {err:.3g} px")


# -------------------------------------------------------- get_composition_map
def test_composition_correct_and_inputs_unchanged(small, od, refs):
    with unchanged(od, *refs):
        comp = run_truth(od.get_composition_map, refs)
    expect_truth(_rms(comp, small[1]) < 0.05, f"X RMS {_rms(comp, small[1]):.3g}")


def test_references_reversed(od, refs):
    expect_error(od.get_composition_map, refs[::-1], names=("order", "lithiated"))


def test_references_reversed_three(od, refs):
    fp, lfp = refs
    mid = fp.deepcopy()
    mid.data = 0.5 * (fp.data + lfp.data)
    expect_error(od.get_composition_map, [lfp, mid, fp], names=("order",))


@pytest.mark.parametrize("which", [0, 1])
def test_reference_negated(od, refs, which):
    r = [x.deepcopy() for x in refs]
    r[which].data = -r[which].data
    expect_error(od.get_composition_map, r, names=(f"reference {which}", "negated"))


@pytest.mark.parametrize("which", [0, 1])
def test_reference_complex(od, refs, which):
    r = [x.deepcopy() for x in refs]
    r[which].data = r[which].data.astype(complex)
    expect_error(od.get_composition_map, r, names=(f"reference {which}", "complex"))


@pytest.mark.parametrize("which", [0, 1])
def test_reference_nan(od, refs, which):
    r = [x.deepcopy() for x in refs]
    r[which].data[5] = np.nan
    expect_error(od.get_composition_map, r, names=(f"reference {which}",))


def test_reference_narrow(od, refs):
    r = [x.isig[705.0:725.0] for x in refs]
    expect_error(od.get_composition_map, r, names=("covers",))


def test_reference_units(od, refs):
    r = [x.deepcopy() for x in refs]
    r[1].axes_manager[-1].units = "keV"
    expect_error(od.get_composition_map, r, names=("reference 1",))


@pytest.mark.parametrize("references, names", [
    ("FePO4", ("two references",)), (None, (("references", "two"),)),
    (np.ones((40, 2)), ("two references",)),
])
def test_references_not_a_list(od, references, names):
    expect_error(od.get_composition_map, references, names=names)


def test_references_one(od, refs):
    expect_error(od.get_composition_map, refs[:1], names=("two references",))


def test_references_mixed(od, refs):
    expect_error(od.get_composition_map, [refs[0], np.ones((32, 32), bool)],
                 names=(("all spectra", "masks"),))


def test_reference_masks_with_shift(od):
    m = np.zeros((32, 32), bool)
    m[10:14, 10:14] = True
    expect_error(od.get_composition_map, [m, ~m], energy_shift=0.2, names=("energy_shift",))


def test_reference_mask_float(od):
    expect_error(od.get_composition_map, [np.ones((32, 32)), np.zeros((32, 32))],
                 names=(("boolean", "dtype"),))


@pytest.mark.parametrize("mask, names", [
    (np.zeros((32, 32), bool), ("mask", "no pixel")), (np.ones((5, 5), bool), ("mask", "shape")),
    (np.ones((32, 32)), ("mask", "boolean")), ("particle", ("mask",)),
])
def test_composition_bad_mask(od, refs, mask, names):
    with unchanged(od, mask):
        expect_error(od.get_composition_map, refs, mask=mask, names=names)


@pytest.mark.parametrize("threshold", [1e9, np.nan, np.inf, -np.inf, "high"])
def test_composition_bad_threshold(od, refs, threshold):
    expect_error(od.get_composition_map, refs, threshold=threshold, names=("threshold",))


@pytest.mark.parametrize("kwargs, names", [
    ({"method": "svd"}, ("method",)), ({"noise": "gaussian"}, ("noise",)),
    ({"energy_shift": np.nan}, ("energy_shift",)), ({"energy_shift": np.inf}, ("energy_shift",)),
    ({"energy_shift": "auto"}, ("energy_shift",)), ({"energy_shift": [0.1]}, ("energy_shift",)),
])
def test_composition_bad_options(od, refs, kwargs, names):
    expect_error(od.get_composition_map, refs, names=names, **kwargs)


def test_energy_shift_fit_exact_coverage(od, refs):
    """The simulator's own references cover the data exactly: no shift can be tried."""
    expect_error(od.get_composition_map, refs, energy_shift="fit",
                 names=("references", ("wider", "extend")))


@pytest.mark.parametrize("max_shift", [0.0, -1.0, np.nan, "big"])
def test_energy_shift_fit_bad_max_shift(od, wide_refs, max_shift):
    expect_error(od.get_composition_map, list(wide_refs), energy_shift="fit",
                 max_shift=max_shift, names=("max_shift",))


@pytest.mark.parametrize("true_shift", [-0.4, 0.0, 0.3])
def test_energy_shift_fit_recovers_shift(small, od, true_shift):
    """References offset by a known calibration error: the fit finds it."""
    fine = np.linspace(695.0, 735.0, 801)
    fp, lfp = fe_l_edge_references(fine - true_shift)   # features moved by +true_shift
    refs = [_spectrum(fine, np.asarray(fp.data), "FePO4"), _spectrum(fine, np.asarray(lfp.data),
                                                                    "LiFePO4")]
    comp = run_truth(od.get_composition_map, refs, energy_shift="fit")
    got = float(comp.metadata.Chemomech.composition_map.energy_shift)
    expect_truth(abs(got + true_shift) < 0.05 and _rms(comp, small[1]) < 0.05,
                 f"fitted shift {got:+.3f} eV for a calibration error {true_shift:+.2f} eV")


def test_energy_shift_fit_limited_by_references(od):
    """References that reach 0.3 eV beyond the data: the search stays within."""
    fine = np.linspace(699.7, 730.3, 613)
    fp, lfp = fe_l_edge_references(fine)
    comp = run_truth(od.get_composition_map, [fp, lfp], energy_shift="fit")
    got = float(comp.metadata.Chemomech.composition_map.energy_shift)
    expect_truth(abs(got) < 0.05, f"fitted shift {got:+.3f} eV, truth 0")


def test_not_optical_density(small, refs):
    expect_error(small[0].get_composition_map, refs, names=("optical density",))


def test_poisson_noise_needs_counts(refs):
    rng = np.random.default_rng(1)
    s = make_stack(rng.uniform(0.1, 1, (16, 16, 40)), np.linspace(700, 730, 40),
                   quantity="Optical density")
    expect_error(s.get_composition_map, refs, noise="poisson", names=("poisson",))


def test_complex_stack(od, refs):
    s = od.deepcopy()
    s.data = s.data.astype(complex)
    expect_error(s.get_composition_map, refs, names=("complex",))


# ------------------------------------------------- HyperSpy operations on a stack
def test_isig_cropped_energy_range_unmixes(small, od, refs):
    """Cropping the energy range keeps the I0 on the kept energies (Poisson noise)."""
    part = od.isig[702.0:728.0]
    with unchanged(part):
        comp = run_truth(part.get_composition_map, refs)
    noise = comp.metadata.Chemomech.composition_map.noise
    expect_truth(_rms(comp, small[1]) < 0.05 and noise == "poisson",
                 f"X RMS {_rms(comp, small[1]):.3g}, noise model {noise}")


def test_crop_energy_axis_unmixes(small, od, refs):
    part = od.deepcopy()
    part.crop(-1, 702.0, 728.0)
    comp = run_truth(part.get_composition_map, refs)
    i0 = part.metadata.Chemomech.optical_density.i0
    expect_truth(_rms(comp, small[1]) < 0.05 and np.size(i0) == part.axes_manager[-1].size,
                 "cropped stack did not unmix with its I0")


def test_isig_spatial_keeps_background_mask(od):
    part = od.inav[4:20, 2:30]
    bg = np.asarray(part.metadata.Chemomech.optical_density.background_mask)
    full = np.asarray(od.metadata.Chemomech.optical_density.background_mask)
    expect_truth(bg.shape == (28, 16) and np.array_equal(bg, full[2:30, 4:20]),
                 f"background mask shape {bg.shape} after inav")


def test_rebin_od_is_mean(od):
    r = run_truth(od.rebin, scale=(2, 2, 1))
    d = np.asarray(od.data)
    want = d[10:12, 10:12].mean(axis=(0, 1))
    expect_truth(np.allclose(np.asarray(r.data)[5, 5], want)
                 and r.metadata.has_item("Chemomech.dropped.i0"),
                 "rebinned OD is not the bin mean (or the I0 was kept without a note)")


def test_rebin_counts_is_sum(small):
    stack = small[0]
    r = run_truth(stack.rebin, scale=(2, 2, 1))
    d = np.asarray(stack.data, float)
    expect_truth(np.allclose(np.asarray(r.data)[5, 5], d[10:12, 10:12].sum(axis=(0, 1))),
                 "rebinned counts are not the bin sum")


def test_rebinned_od_unmixes(small, od, refs):
    r = od.rebin(scale=(2, 2, 1))
    comp = run_truth(r.get_composition_map, refs)
    X = np.asarray(comp.data)
    expect_truth(np.nanmax(X) <= 1 and np.nanmin(X) >= 0
                 and comp.metadata.Chemomech.composition_map.noise == "residual",
                 "rebinned stack: X outside [0, 1] or Poisson noise kept on averaged pixels")
