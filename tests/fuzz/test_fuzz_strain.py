"""Fuzz set (issue 15): the strain surface, bad and unusual input.

StrainField.from_components / learn_eigenstrain / decompose / dislocation_density /
incompatibility / find_dislocations / check_conventions / rotate_basis, the
plain-array engines behind them, and HyperSpy's rebin / isig / crop on a strain
field. Each case has its oracle: the error it must raise (naming the problem) or
the truth it must meet; inputs are never modified.
"""

import warnings

import numpy as np
import pytest
from _oracles import expect_error, expect_truth, run_truth, unchanged
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyperspy_chemomech.signals import StrainField
from hyperspy_chemomech.simulate.particle import make_particle

TRUE_SLOPES = np.array([0.052, -0.020])   # the Vegard law of simulate.particle (LiFePO4)
MATERIAL = "LiFePO4"   # the particles' stiffness here: homogeneous LiFePO4 (learned with it)


@pytest.fixture(scope="module")
def particle():
    return make_particle(shape=(40, 60), noise=1e-4, material=MATERIAL)


@pytest.fixture(scope="module")
def pair(particle):
    return particle.strain_field(), particle.composition_map()


@pytest.fixture(scope="module")
def law(pair):
    strain, comp = pair
    return strain.learn_eigenstrain(comp, degree=1, material=MATERIAL)


def _slopes(law):
    return np.asarray(law.metadata.Chemomech.law.vegard.slopes, float)[:2]


def _quiet(func, *args, **kwargs):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = func(*args, **kwargs)
    return out, [str(x.message) for x in w]


def _with(signal, data=None, **changes):
    """A copy of ``signal`` with new data (the original is left alone)."""
    out = signal.deepcopy()
    if data is not None:
        out.data = data
    return out


# --------------------------------------------------------------- from_components
@pytest.mark.parametrize("k", range(4))
def test_from_components_complex(k):
    comps = [np.zeros((8, 8)) for _ in range(4)]
    comps[k] = comps[k] + 1e-3j
    name = ("e11", "e22", "e12", "theta")[k]
    expect_error(StrainField.from_components, *comps, names=(name, "complex"))


@pytest.mark.parametrize("case, names", [
    ("shapes", ("shape",)), ("1d", (("2d", "shape"),)), ("variance_shape", ("variance",)),
    ("variance_complex", ("variance", "complex")), ("scale0", ("scale",)),
    ("scale-1", ("scale",)), ("scalenan", ("scale",)), ("text", (("number", "dtype"),)),
])
def test_from_components_bad(case, names):
    comps = [np.zeros((8, 8)) for _ in range(4)]
    kw = {}
    if case == "shapes":
        comps[2] = np.zeros((8, 9))
    elif case == "1d":
        comps = [np.zeros(8) for _ in range(4)]
    elif case == "variance_shape":
        kw["variance"] = np.ones((3, 8, 8))
    elif case == "variance_complex":
        kw["variance"] = np.ones((4, 8, 8)) + 0j
    elif case.startswith("scale"):
        kw["scale"] = {"scale0": 0.0, "scale-1": -1.0, "scalenan": np.nan}[case]
    elif case == "text":
        comps[0] = np.full((8, 8), "a")
    expect_error(StrainField.from_components, *comps, names=names, **kw)


# -------------------------------------------------------- learn_eigenstrain: errors
def _bad_composition(comp, case):
    X = np.array(comp.data, dtype=float)
    c = comp.deepcopy()
    if case == "above1":
        X[np.isfinite(X)] = np.where(X[np.isfinite(X)] > 0.5, 1.2, X[np.isfinite(X)])
    elif case == "below0":
        X[np.isfinite(X)] -= 0.5
    elif case == "allnan":
        X[:] = np.nan
    elif case == "complex":
        c.data = X.astype(complex)
        return c
    elif case == "tiny":
        Y = np.full_like(X, np.nan)
        ys, xs = np.nonzero(np.isfinite(X))
        Y[ys[:3], xs[:3]] = X[ys[:3], xs[:3]]
        X = Y
    elif case == "uniform":
        X[np.isfinite(X)] = 0.4
    elif case == "grid":
        import hyperspy.api as hs

        c = hs.signals.Signal2D(X[:, :-3])
        c.set_signal_type("composition_map")
        for ax, a0 in zip(c.axes_manager.signal_axes, comp.axes_manager.signal_axes):
            ax.scale, ax.units, ax.offset = a0.scale, a0.units, a0.offset
        return c
    elif case == "pixel":
        c.axes_manager.signal_axes[0].scale *= 2
        c.axes_manager.signal_axes[1].scale *= 2
        return c
    elif case == "offset":
        c.axes_manager.signal_axes[0].offset += 50.0
        return c
    elif case == "uncalibrated":
        for ax in c.axes_manager.signal_axes:
            ax.units = "<undefined>"
        return c
    c.data = X
    return c


COMP_CASES = [
    ("above1", ("outside [0, 1]",)), ("below0", ("outside [0, 1]",)),
    ("allnan", (("empty", "no finite"),)), ("complex", ("complex",)),
    ("tiny", ("pixel",)), ("uniform", ("composition",)), ("grid", ("grid",)),
    ("pixel", ("pixel size",)), ("offset", ("offset",)), ("uncalibrated", ("calibration",)),
]


@pytest.mark.parametrize("case, names", COMP_CASES, ids=[c for c, _ in COMP_CASES])
def test_learn_bad_composition(pair, case, names):
    strain, comp = pair
    bad = _bad_composition(comp, case)
    with unchanged(strain, bad):
        expect_error(strain.learn_eigenstrain, bad, degree=1, names=names)


@pytest.mark.parametrize("composition, names", [
    (None, ("composition",)), ("comp.hspy", ("composition",)),
])
def test_learn_composition_not_a_signal(pair, composition, names):
    expect_error(pair[0].learn_eigenstrain, composition, names=names)


def test_learn_composition_array(pair):
    expect_error(pair[0].learn_eigenstrain, np.asarray(pair[1].data), names=("composition",))


def _bad_strain(strain, case):
    d = np.array(strain.data, dtype=float)
    s = strain.deepcopy()
    if case == "complex":
        s.data = d.astype(complex)
        return s
    if case == "inf":
        d[0, 20, 30] = np.inf
    elif case == "allnan":
        d[:] = np.nan
    elif case == "uncalibrated":
        for ax in s.axes_manager.signal_axes:
            ax.units = "<undefined>"
        return s
    elif case == "three":
        import hyperspy.api as hs

        s = hs.signals.Signal2D(d[:3])
        s.set_signal_type("strain_field")
        for ax, a0 in zip(s.axes_manager.signal_axes, strain.axes_manager.signal_axes):
            ax.scale, ax.units, ax.offset = a0.scale, a0.units, a0.offset
        return s
    s.data = d
    return s


STRAIN_CASES = [("complex", ("complex",)), ("inf", ("infinite",)),
                ("allnan", (("no finite", "all nan"),)), ("uncalibrated", ("calibration",)),
                ("three", (("navigation shape", "4"),))]


@pytest.mark.parametrize("case, names", STRAIN_CASES, ids=[c for c, _ in STRAIN_CASES])
def test_learn_bad_strain(pair, case, names):
    strain, comp = pair
    bad = _bad_strain(strain, case)
    with unchanged(bad, comp):
        expect_error(bad.learn_eigenstrain, comp, degree=1, names=names)


LEARN_OPTIONS = [
    ({"degree": 0}, ("degree",)), ({"degree": -1}, ("degree",)), ({"degree": 2.5}, ("degree",)),
    ({"degree": True}, ("degree",)), ({"degree": "high"}, ("degree",)),
    ({"max_degree": 0}, ("max_degree",)), ({"max_degree": -2}, ("max_degree",)),
    ({"max_degree": 1.5}, ("max_degree",)), ({"basis": "fourier"}, ("basis",)),
    ({"method": "magic"}, ("method",)), ({"boundary": "clamped"}, ("boundary",)),
    ({"selection": "aic"}, ("selection",)), ({"dislocations": "yes"}, ("dislocations",)),
    ({"uncertainty": "exact"}, ("uncertainty",)), ({"material": "unobtanium"}, ("unobtanium",)),
    ({"plane": "shell"}, ("plane",)), ({"crystal_angle": np.nan}, ("crystal_angle",)),
    ({"crystal_angle": np.inf}, ("crystal_angle",)),
    ({"monotonic": True}, ("monotonic",)),
    ({"mask": np.zeros((40, 60), bool)}, (("empty", "mask"),)),
    ({"mask": np.ones((5, 5), bool)}, ("mask",)),
    ({"mask": np.full((40, 60), 0.5)}, ("mask",)),
    ({"mask": np.ones((40, 60), bool)}, (("nan", "mask"),)),
]


@pytest.mark.parametrize("kwargs, names", LEARN_OPTIONS, ids=[str(k)[:40] for k, _ in LEARN_OPTIONS])
def test_learn_bad_options(pair, kwargs, names):
    strain, comp = pair
    kwargs = dict({"degree": 1}, **kwargs) if "degree" not in kwargs else kwargs
    with unchanged(strain, comp):
        expect_error(strain.learn_eigenstrain, comp, names=names, **kwargs)


@pytest.mark.parametrize("case, names", [
    ("allnan", ("variance",)), ("negative", ("variance",)), ("shape", ("variance",)),
    ("complex", ("variance",)),
])
def test_learn_bad_variance(pair, case, names):
    strain, comp = pair
    import hyperspy.api as hs

    v = np.full(strain.data.shape, 1e-8)
    if case == "allnan":
        v[:] = np.nan
    elif case == "negative":
        v[0, 10, 10] = -1.0
    elif case == "shape":
        v = v[:3]
    elif case == "complex":
        v = v + 0j
    s = strain.deepcopy()
    s.metadata.set_item("Signal.Noise_properties.variance", hs.signals.Signal2D(v))
    with unchanged(s, comp):
        expect_error(s.learn_eigenstrain, comp, degree=1, names=names)


def test_learn_dislocation_search_error_names_learn_option(pair):
    """find_dislocations' own arguments must not leak into learn's message."""
    strain, comp = pair
    # a body too thin for the dislocation search: one line of pixels wide bands
    X = np.array(comp.data, float)
    mask = np.zeros(X.shape, bool)
    mask[10:30:2, 5:55] = True
    X2 = np.where(mask, np.nan_to_num(X, nan=0.3), np.nan)
    c = comp.deepcopy()
    c.data = X2
    err = expect_error(strain.learn_eigenstrain, c, degree=1, mask=mask,
                       exc=(ValueError,), names=(("dislocations", "composition", "particle"),))
    assert "exclude_border" not in str(err) and "threshold=" not in str(err)


# ------------------------------------------------------ learn_eigenstrain: truths
def test_learn_correct_inputs_unchanged(pair, law):
    strain, comp = pair
    expect_truth(np.allclose(_slopes(law), TRUE_SLOPES, rtol=0.01),
                 f"slopes {_slopes(law)} vs {TRUE_SLOPES}")


def test_zero_filled_vacuum(pair):
    """X = 0 (a valid composition) in the vacuum: the body comes from the strain."""
    strain, comp = pair
    c = comp.deepcopy()
    c.data = np.nan_to_num(np.asarray(comp.data, float), nan=0.0)
    with unchanged(strain, c):
        law, msgs = run_truth(_quiet, strain.learn_eigenstrain, c, degree=1, material=MATERIAL)
    body = law.metadata.Chemomech.law.body
    expect_truth(np.allclose(_slopes(law), TRUE_SLOPES, rtol=0.02) and bool(body.vacuum_excluded)
                 and any("vacuum" in m for m in msgs),
                 f"slopes {_slopes(law)} (truth {TRUE_SLOPES}), warned: {msgs}")


def test_integer_composition_map(pair, particle):
    """An integer (0/1) map, 0 in the vacuum: the vacuum is no body, said so."""
    strain, comp = pair
    c = comp.deepcopy()
    c.data = np.rint(np.nan_to_num(np.asarray(comp.data, float), nan=0.0)).astype(int)
    law, msgs = run_truth(_quiet, strain.learn_eigenstrain, c, degree=1, material=MATERIAL)
    mask = np.asarray(law.metadata.Chemomech.law.body.mask)
    expect_truth(np.array_equal(mask, particle.mask) and any("vacuum" in m for m in msgs),
                 f"body of {mask.sum()} px, the particle {particle.mask.sum()} px; warned: {msgs}")


def test_nan_hole_learn(pair, law):
    """An 8 x 8 NaN hole in the composition inside the particle is filled, and said so."""
    strain, comp = pair
    c = comp.deepcopy()
    X = np.array(comp.data, float)
    X[16:24, 26:34] = np.nan
    c.data = X
    with unchanged(strain, c):
        got, msgs = run_truth(_quiet, strain.learn_eigenstrain, c, degree=1, material=MATERIAL)
    expect_truth(np.allclose(_slopes(got), _slopes(law), rtol=0.01)
                 and int(got.metadata.Chemomech.law.body.n_holes_filled) == 64
                 and any("filled" in m for m in msgs),
                 f"slopes {_slopes(got)} vs {_slopes(law)}; warned: {msgs}")


@pytest.mark.parametrize("value", [1e6, -1e6, 3.0])
def test_single_wild_strain_pixel(pair, law, value):
    """One strain pixel of 1e6: no bias of the slopes beyond 1 % (it is a failed fit)."""
    strain, comp = pair
    s = strain.deepcopy()
    d = np.array(strain.data, float)
    d[0, 20, 30] = value
    s.data = d
    with unchanged(s, comp):
        got, msgs = run_truth(_quiet, s.learn_eigenstrain, comp, degree=1, material=MATERIAL)
    expect_truth(np.allclose(_slopes(got), _slopes(law), rtol=0.01)
                 and any("failed fits" in m for m in msgs),
                 f"slopes {_slopes(got)} vs clean {_slopes(law)}")


def test_learn_provenance(pair, law):
    strain, comp = pair
    info = law.metadata.Chemomech.law
    import hashlib

    h = hashlib.sha256(np.ascontiguousarray(np.asarray(comp.data, float)).tobytes()).hexdigest()
    st_ = info.settings
    ok = (info.composition.title == comp.metadata.General.title and info.composition.sha256 == h
          and int(st_.max_degree) == 6 and st_.dislocations == "fit" and int(st_.seed) == 0
          and st_.extend_body in (True, 1) and info.has_item("dislocations.positions_px")
          and info.has_item("body.n_extended") and info.has_item("version"))
    expect_truth(ok, f"provenance incomplete: {info}")


# ---------------------------------------------------------------------- decompose
def test_decompose_not_a_law(pair):
    strain, comp = pair
    expect_error(strain.decompose, comp, law=np.ones(3), names=("law",))


def test_decompose_nan_hole_like_learn(pair, law):
    """The same 8 x 8 hole: decompose fills it as learning does (one rule, said so).

    The hole stays in the body (not a void), its residual is NaN (its composition
    is a guess). Away from it (> 6 px) the residual is within 2x that of the full
    map (the fill cannot know the missing chemistry, whose elastic field reaches
    out) and far below a void's (measured: 1.5x filled against 10.6x as a void).
    """
    strain, comp = pair
    c = comp.deepcopy()
    X = np.array(comp.data, float)
    X[16:24, 26:34] = np.nan
    c.data = X
    clean = strain.decompose(comp, law)
    with unchanged(strain, c):
        parts, msgs = run_truth(_quiet, strain.decompose, c, law)
    from scipy import ndimage

    hole_mask = np.zeros(X.shape, bool)
    hole_mask[16:24, 26:34] = True
    ring = np.asarray(clean.mask) & ~ndimage.binary_dilation(hole_mask, iterations=6)
    void = strain.decompose(c, law, mask=np.isfinite(X))
    r0 = np.asarray(clean.residual.data)[:2][:, ring]
    r1 = np.asarray(parts.residual.data)[:2][:, ring]
    rv = np.asarray(void.residual.data)[:2][:, ring]
    void_ratio = float(np.sqrt(np.nanmean(rv ** 2) / np.nanmean(r0 ** 2)))
    hole = np.asarray(parts.residual.data)[:, 16:24, 26:34]
    ratio = float(np.sqrt(np.nanmean(r1 ** 2) / np.nanmean(r0 ** 2)))
    in_body = bool(np.asarray(parts.mask)[16:24, 26:34].all())
    expect_truth(ratio < 2.0 and ratio < 0.5 * void_ratio and np.isfinite(r1).all() and np.isnan(hole).all() and in_body
                 and any("filled" in m for m in msgs),
                 f"residual away from the hole {ratio:.2f} x the clean one (void {void_ratio:.2f} x); "
                 f"hole in body {in_body}")


def test_decompose_zero_filled_vacuum(pair, law):
    strain, comp = pair
    c = comp.deepcopy()
    c.data = np.nan_to_num(np.asarray(comp.data, float), nan=0.0)
    parts, msgs = run_truth(_quiet, strain.decompose, c, law)
    res = np.asarray(parts.residual.data)[:3]
    rms = float(np.sqrt(np.nanmean(res ** 2)))
    expect_truth(rms < 2e-4 and any("vacuum" in m for m in msgs), f"residual RMS {rms:.3g}")


@pytest.mark.parametrize("case, names", [("allnan", (("no finite", "all nan"),)),
                                         ("complex", ("complex",)), ("inf", ("infinite",))])
def test_decompose_bad_strain(pair, law, case, names):
    strain, comp = pair
    bad = _bad_strain(strain, case)
    expect_error(bad.decompose, comp, law, names=names)


@pytest.mark.parametrize("case, names", [("tiny", ("pixel",)), ("above1", ("outside [0, 1]",)),
                                         ("allnan", (("empty", "no finite"),))])
def test_decompose_bad_composition(pair, law, case, names):
    strain, comp = pair
    expect_error(strain.decompose, _bad_composition(comp, case), law, names=names)


@pytest.mark.parametrize("kwargs, names", [
    ({"reference": "median"}, ("reference",)), ({"reference": [1, 2]}, ("reference",)),
    ({"plane": "strain"}, ("plane",)), ({"crystal_angle": 0.3}, ("crystal_angle",)),
    ({"boundary": "dirichlet"}, ("boundary",)), ({"material": "FePO4"}, ("material",)),
])
def test_decompose_bad_options(pair, law, kwargs, names):
    strain, comp = pair
    expect_error(strain.decompose, comp, law, names=names, **kwargs)


# ------------------------------------------------- Nye tensor, incompatibility
def _tiny(n, m=None):
    m = n if m is None else m
    return StrainField.from_components(*(np.full((n, m), 1e-3) for _ in range(4)), scale=2.0)


MAPS = ["dislocation_density", "incompatibility", "find_dislocations", "check_conventions"]


@pytest.mark.parametrize("method", MAPS)
@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 3), (1, 40), (40, 2)])
def test_maps_on_tiny_input(method, shape):
    s = _tiny(*shape)
    with unchanged(s):
        expect_error(getattr(s, method), names=("px",))


@pytest.mark.parametrize("method", MAPS)
def test_maps_on_all_nan(method):
    s = StrainField.from_components(*(np.full((20, 20), np.nan) for _ in range(4)), scale=2.0)
    expect_error(getattr(s, method), names=(("all nan", "finite"),))


@pytest.mark.parametrize("method", MAPS)
def test_maps_on_complex(pair, method):
    s = pair[0].deepcopy()
    s.data = s.data.astype(complex)
    expect_error(getattr(s, method), names=("complex",))


@pytest.mark.parametrize("method", MAPS)
def test_maps_uncalibrated(pair, method):
    s = pair[0].deepcopy()
    for ax in s.axes_manager.signal_axes:
        ax.units = "<undefined>"
    expect_error(getattr(s, method), names=("calibration",))


@pytest.mark.parametrize("method", ["dislocation_density", "incompatibility", "find_dislocations",
                                    "check_conventions"])
@pytest.mark.parametrize("smoothing", [-1.0, np.nan, np.inf, "wide"])
def test_maps_bad_smoothing(pair, method, smoothing):
    expect_error(getattr(pair[0], method), smoothing=smoothing, names=("smoothing",))


@pytest.mark.parametrize("burgers", [0.0, -0.3, np.nan, np.inf])
def test_dislocation_density_bad_burgers(pair, burgers):
    expect_error(pair[0].dislocation_density, burgers=burgers, names=("burgers",))


def test_dislocation_density_compatible_field_is_zero(particle):
    s = make_particle(shape=(40, 60), noise=0.0).strain_field()
    a = np.asarray(run_truth(s.dislocation_density).data)[2]
    inner = np.asarray(a)[particle.mask]
    expect_truth(np.nanmedian(np.abs(inner)) < 1e-4, f"Nye of a compatible field {np.nanmedian(np.abs(inner)):.3g}")


FIND_BAD = [
    ({"radius": 0}, ("radius",)), ({"radius": -2.0}, ("radius",)), ({"radius": np.nan}, ("radius",)),
    ({"threshold": -1.0}, ("threshold",)), ({"threshold": 0.0}, ("threshold",)),
    ({"threshold": np.nan}, ("threshold",)), ({"min_burgers": -0.1}, ("min_burgers",)),
    ({"min_burgers": np.nan}, ("min_burgers",)), ({"false_alarms": 0.0}, ("false_alarms",)),
    ({"false_alarms": -1.0}, ("false_alarms",)), ({"false_alarms": np.nan}, ("false_alarms",)),
    ({"exclude_border": -1}, ("exclude_border",)), ({"exclude_border": 1.5}, ("exclude_border",)),
    ({"exclude_border": np.nan}, ("exclude_border",)), ({"exclude_border": 1000}, ("exclude_border",)),
]


@pytest.mark.parametrize("kwargs, names", FIND_BAD, ids=[str(k) for k, _ in FIND_BAD])
def test_find_dislocations_bad_options(pair, kwargs, names):
    s = pair[0]
    with unchanged(s):
        expect_error(s.find_dislocations, names=names, **kwargs)


def test_find_dislocations_carries_settings():
    p = make_particle(shape=(60, 90), noise=1e-4, n_dislocations=1, seed=2)
    found = run_truth(p.strain_field().find_dislocations, radius=20.0)
    st_ = getattr(found, "settings", {})
    expect_truth(len(found) >= 1 and st_.get("radius") == 20.0 and st_.get("radius_px") == 4.0
                 and "threshold" in st_ and "version" in st_, f"settings {st_}")


@pytest.mark.parametrize("tolerance", [-1.0, 0.0, 0.5, np.nan, np.inf, "strict"])
def test_check_conventions_bad_tolerance(pair, tolerance):
    expect_error(pair[0].check_conventions, tolerance=tolerance, names=("tolerance",))


@pytest.mark.parametrize("flip, best", [((1, 1, 1, -1), "rotation sign flipped"),
                                        ((1, 1, 1, 1), "as given")])
def test_check_conventions_finds_the_flip(particle, flip, best):
    s = make_particle(shape=(60, 100), noise=1e-4).strain_field()
    s.data = np.asarray(s.data) * np.array(flip)[:, None, None]
    out = run_truth(s.check_conventions)
    import inspect

    default = inspect.signature(type(s).check_conventions).parameters["tolerance"].default
    expect_truth(out["best"] == best and out["settings"]["tolerance"] == default,
                 f"best {out['best']}, settings {out.get('settings')}")


@pytest.mark.parametrize("angle", [np.nan, np.inf, "north"])
def test_rotate_basis_bad_angle(pair, angle):
    expect_error(pair[0].rotate_basis, angle, names=("angle",))


def test_rotate_basis_complex(pair):
    s = pair[0].deepcopy()
    s.data = s.data.astype(complex)
    expect_error(s.rotate_basis, 0.3, names=("complex",))


def test_rotate_basis_round_trip(pair):
    s = pair[0]
    with unchanged(s):
        back = run_truth(lambda: s.rotate_basis(0.4).rotate_basis(-0.4))
    expect_truth(np.allclose(np.asarray(back.data), np.asarray(s.data), equal_nan=True, atol=1e-15),
                 "rotating by +a then -a changed the strain")


# ----------------------------------------------- HyperSpy operations on a strain field
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fy=st.sampled_from([1, 2, 4, 5]), fx=st.sampled_from([1, 2, 3, 4]))
def test_rebin_is_the_mean(pair, fy, fx):
    """Property: every rebinned pixel is the NaN-aware mean of its block."""
    s = pair[0]
    r = s.rebin(scale=(1, fx, fy))
    d = np.asarray(s.data)
    ny, nx = (d.shape[1] // fy) * fy, (d.shape[2] // fx) * fx
    blocks = d[:, :ny, :nx].reshape(4, ny // fy, fy, nx // fx, fx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmean(blocks, axis=(2, 4))
    got = np.asarray(r.data)
    ok = got.shape == want.shape and np.allclose(got, want, equal_nan=True)
    ok &= np.isclose(r.axes_manager.signal_axes[0].scale, fx * s.axes_manager.signal_axes[0].scale)
    expect_truth(bool(ok), f"rebin by ({fy}, {fx}) is not the block mean")


def test_rebin_variance_of_mean(pair):
    import hyperspy.api as hs

    s = pair[0].deepcopy()
    v = np.full(s.data.shape, 4e-8)
    s.metadata.set_item("Signal.Noise_properties.variance", hs.signals.Signal2D(v))
    r = s.rebin(scale=(1, 2, 2))
    rv = np.asarray(r.metadata.Signal.Noise_properties.variance.data)
    inside = np.isfinite(np.asarray(s.data)).reshape(4, 20, 2, 30, 2).all(axis=(2, 4))
    expect_truth(rv.shape == (4, 20, 30) and np.allclose(rv[inside], 1e-8),
                 "variance of a 2x2 mean is not variance / 4")


def test_isig_and_crop_keep_variance(pair):
    import hyperspy.api as hs

    s = pair[0].deepcopy()
    v = np.random.default_rng(0).uniform(1e-9, 1e-8, s.data.shape)
    s.metadata.set_item("Signal.Noise_properties.variance", hs.signals.Signal2D(v))
    a = s.isig[10:50, 5:30]
    c = s.deepcopy()
    c.crop(1, 10, 50)
    c.crop(2, 5, 30)
    va = np.asarray(a.metadata.Signal.Noise_properties.variance.data)
    vc = np.asarray(c.metadata.Signal.Noise_properties.variance.data)
    expect_truth(np.array_equal(va, v[:, 5:30, 10:50]) and np.array_equal(vc, v[:, 5:30, 10:50]),
                 "the variance did not follow isig / crop")


def test_cropped_strain_learns(pair):
    """A crop that keeps the whole particle learns the same law."""
    strain, comp = pair
    s = strain.isig[2:58, 2:38]
    c = comp.isig[2:58, 2:38]
    law = run_truth(s.learn_eigenstrain, c, degree=1, material=MATERIAL)
    expect_truth(np.allclose(_slopes(law), TRUE_SLOPES, rtol=0.01), f"slopes {_slopes(law)}")


def test_rebin_lazy_is_mean(pair):
    s = pair[0].as_lazy()
    r = s.rebin(scale=(1, 2, 2))
    d = np.asarray(pair[0].data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = np.nanmean(d.reshape(4, 20, 2, 30, 2), axis=(2, 4))
    r.compute()
    expect_truth(np.allclose(np.asarray(r.data), want, equal_nan=True), "lazy rebin is not the mean")


# ------------------------------------------------ HyperSpy operations on a law
def test_law_rebin_is_mean(law):
    r = law.rebin(scale=(1, 4))
    d = np.asarray(law.data)[:, :100].reshape(2, 25, 4).mean(axis=2)
    band = np.asarray(r.metadata.Chemomech.law.band95)
    expect_truth(np.allclose(np.asarray(r.data), d) and band.shape == (2, 25),
                 "rebinned law is not the mean (or its band stayed on the old grid)")


def test_law_isig_keeps_band_and_evaluates(law):
    part = law.isig[0.2:0.8]
    band = np.asarray(part.metadata.Chemomech.law.band95)
    X = part.axes_manager.signal_axes[0].axis
    expect_truth(band.shape == part.data.shape
                 and np.allclose(part.evaluate(X), np.asarray(part.data), atol=1e-12),
                 "cropped law: band or evaluate off the data")
