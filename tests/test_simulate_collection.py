"""The collection and operando generators (simulate/collection.py): shapes, seeds, truth."""

import numpy as np
import pytest

from hyperspy_chemomech.simulate import (
    make_particle,
    operando_series,
    particle_collection,
)

SMALL = dict(shape=(48, 80), n_dislocations=1, show_progressbar=False)


@pytest.fixture(scope="module")
def col():
    return particle_collection(n_members=4, n_odd=2, seed=3, **SMALL)


def test_collection_members_differ_and_are_calibrated(col):
    assert len(col.strains) == len(col.compositions) == 4
    shapes = {s.data.shape[1:] for s in col.strains}
    pixels = {s.axes_manager.signal_axes[0].scale for s in col.strains}
    assert len(shapes) > 1 and len(pixels) > 1          # grid and pixel size vary
    angles = [float(s.metadata.Chemomech.frame.crystal_angle) for s in col.strains]
    assert len(set(np.round(angles, 6))) == 4
    for s, c, p in zip(col.strains, col.compositions, col.params):
        assert s.metadata.Signal.signal_type == "strain_field"
        assert c.metadata.Signal.signal_type == "composition_map"
        assert s.data.shape == (4,) + tuple(p["shape"]) and c.data.shape == tuple(p["shape"])
        for ax in list(s.axes_manager.signal_axes) + list(c.axes_manager.signal_axes):
            assert ax.units == "nm" and ax.scale == pytest.approx(p["pixel_size"])
        # the body: the composition is finite exactly where the strain is
        assert np.array_equal(np.isfinite(c.data), np.isfinite(s.data[0]))
        assert np.nanmin(c.data) >= 0 and np.nanmax(c.data) <= 1
        assert c.metadata.Chemomech.registration.source_pixel_size_nm == pytest.approx(
            4 * p["pixel_size"])


def test_collection_composition_is_coarse_and_noise_free(col):
    from scipy import ndimage

    for p in col.particles:
        inner = ndimage.binary_erosion(p.mask, iterations=6)
        # 4x coarser, bilinear back onto the strain grid: along x the map is linear
        # between coarse pixel centres, which lie between fine columns 4k+1 and 4k+2,
        # so its second difference vanishes at columns 4k and 4k+3 (noise-free), the
        # truth's does not
        d2 = p.X_observed[:, 2:] - 2 * p.X_observed[:, 1:-1] + p.X_observed[:, :-2]
        t2 = p.X_true[:, 2:] - 2 * p.X_true[:, 1:-1] + p.X_true[:, :-2]
        cols = np.arange(1, p.mask.shape[1] - 1)
        off = inner[:, 1:-1] & np.isin(cols % 4, (0, 3))[None]
        assert np.abs(d2[off]).max() < 1e-12
        assert np.abs(t2[off]).max() > 1e-3
        assert np.nanstd(p.X_observed[p.mask]) > 0.05


def test_collection_gaussian_psf_option():
    from hyperspy_chemomech.fields import FWHM_PER_SIGMA, masked_gaussian

    g = particle_collection(n_members=1, xray_psf="gaussian", **SMALL)
    p = g.particles[0]
    want = np.clip(masked_gaussian(p.X_true, p.mask, 4 / FWHM_PER_SIGMA), 0, 1)
    np.testing.assert_array_equal(p.X_observed, want)
    np.testing.assert_array_equal(g.compositions[0].data, want)
    assert g.compositions[0].metadata.Chemomech.registration.source_pixel_size_nm == \
        pytest.approx(4 * g.params[0]["pixel_size"])
    d = particle_collection(n_members=1, **SMALL).particles[0]
    np.testing.assert_array_equal(d.X_true, p.X_true)         # only the blur differs
    assert np.nanmax(np.abs(d.X_observed - p.X_observed)) > 1e-3


def test_collection_noise_and_dislocations(col):
    p = col.particles[1]
    resid = (p.strain - p.strain_noise_free)[:, p.mask]
    assert resid.std() == pytest.approx(2e-3, rel=0.05)
    assert len(p.dislocation_positions) == 1


def test_collection_reproducible_by_seed_and_prefix_stable(col):
    again = particle_collection(n_members=4, n_odd=2, seed=3, **SMALL)
    for a, b in zip(col.strains, again.strains):
        np.testing.assert_array_equal(a.data, b.data)
    other = particle_collection(n_members=4, n_odd=2, seed=4, **SMALL)
    assert not np.array_equal(np.nan_to_num(col.strains[0].data[0]),
                              np.nan_to_num(other.strains[0].data[0]))
    # member i depends on (seed, i) only: a larger homogeneous collection starts with these
    a = particle_collection(n_members=2, seed=3, **SMALL)
    b = particle_collection(n_members=3, seed=3, **SMALL)
    np.testing.assert_array_equal(a.strains[1].data, b.strains[1].data)


def test_odd_members_follow_the_steeper_law(col):
    assert col.odd.size == 2 and len(set(col.odd)) == 2
    base = np.asarray(col.law.slopes)
    np.testing.assert_allclose(col.member_slopes[col.odd], 1.10 * base[None].repeat(2, 0))
    normal = np.setdiff1d(np.arange(4), col.odd)
    np.testing.assert_allclose(col.member_slopes[normal], base[None].repeat(normal.size, 0))
    for i in range(4):
        p, q = col.params[i], col.particles[i]
        # the same member under the shared law: the forward strain is linear in the law
        ref = make_particle(shape=p["shape"], pixel_size=p["pixel_size"], law=col.law,
                            composition=p["pattern"], material="LixFePO4",
                            crystal_angle=p["crystal_angle"], mask=q.mask, seed=p["seed"],
                            composition_kwargs={"fraction": p["state_of_charge"]})
        np.testing.assert_array_equal(ref.X_true, q.X_true)
        ratio = np.nanmedian(q.strain_clean[:2] / ref.strain_clean[:2])
        assert ratio == pytest.approx(1.10 if i in col.odd else 1.0, rel=1e-9)


def test_collection_lazy_matches_eager_and_holds_one(col):
    lazy = particle_collection(n_members=4, n_odd=2, seed=3, lazy=True, **SMALL)
    assert lazy.particles is None
    np.testing.assert_array_equal(lazy.strains[2].data, col.strains[2].data)
    np.testing.assert_array_equal(lazy.compositions[2].data, col.compositions[2].data)
    np.testing.assert_array_equal(lazy.strains[-1].data, col.strains[3].data)
    assert lazy._last[0] == 3
    with pytest.raises(IndexError):
        lazy.strains[4]


def test_collection_save_round_trip(tmp_path):
    import hyperspy.api as hs

    c = particle_collection(n_members=2, lazy=True, **SMALL)
    strains, comps = c.save(tmp_path, file_format="hspy", show_progressbar=False)
    s = hs.load(strains[1], lazy=True)
    assert s.metadata.Signal.signal_type == "strain_field"
    np.testing.assert_array_equal(np.asarray(s.data), c.strains[1].data)
    assert float(s.metadata.Chemomech.frame.crystal_angle) == pytest.approx(
        c.params[1]["crystal_angle"])
    assert hs.load(comps[0]).metadata.Signal.signal_type == "composition_map"


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_members=0), "n_members"), (dict(n_members=3, n_odd=4), "n_odd"),
    (dict(state_of_charge=(0.5, 1.2)), "state_of_charge"), (dict(patterns=("plaid",)), "plaid"),
    (dict(size_spread=1.5), "size_spread"), (dict(xray_psf="airy"), "xray_psf"),
])
def test_collection_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        particle_collection(lazy=True, **kwargs)


@pytest.fixture(scope="module")
def op():
    return operando_series(n_frames=6, shape=(60, 100), drift=1.5, n_dislocations=1, seed=2,
                           show_progressbar=False)


def test_operando_layout_and_axes(op):
    assert op.strain.data.shape == (6, 4, 60, 100)
    assert op.composition.data.shape == (6, 60, 100)
    t_s = [a for a in op.strain.axes_manager.navigation_axes if a.name == "time"][0]
    t_c = op.composition.axes_manager.navigation_axes[0]
    for t in (t_s, t_c):
        assert t.name == "time" and t.size == 6 and t.units == "s" and t.scale == 60.0
    assert [a.name for a in op.strain.axes_manager.navigation_axes] == ["component", "time"]
    for ax in list(op.strain.axes_manager.signal_axes) + list(op.composition.axes_manager.signal_axes):
        assert ax.units == "nm" and ax.scale == 5.0
    assert float(op.strain.metadata.Chemomech.frame.crystal_angle) == pytest.approx(op.crystal_angle)


def test_operando_body_fixed_boundary_moving(op):
    assert op.drift[0].tolist() == [0, 0] and np.abs(op.drift).max() > 0
    for t in range(op.n_frames):
        dy, dx = op.drift[t]
        back = np.roll(np.isfinite(op.strain.data[t, 0]), (-dy, -dx), axis=(0, 1))
        assert np.array_equal(back, op.mask)            # the same body, shifted by the drift
        assert np.array_equal(np.isfinite(op.composition.data[t]), np.isfinite(op.strain.data[t, 0]))
    rich = (op.X_true > 0.5).sum(axis=(1, 2))
    assert np.all(np.diff(rich) > 0)                    # the Li-rich phase grows every frame
    assert np.all(np.diff(op.front_position) > 0)
    mean_x = np.nanmean(op.X_true, axis=(1, 2))
    assert mean_x[-1] - mean_x[0] > 0.4


def test_operando_reproducible_and_no_drift():
    a = operando_series(n_frames=3, shape=(50, 80), n_dislocations=0, seed=5)
    b = operando_series(n_frames=3, shape=(50, 80), n_dislocations=0, seed=5)
    np.testing.assert_array_equal(a.strain.data, b.strain.data)
    assert not np.abs(a.drift).any()
    finite = np.isfinite(a.strain.data[:, 0])
    assert all(np.array_equal(f, a.mask) for f in finite)
    # new noise every frame
    d = a.strain.data - np.where(a.mask, a.strain_clean + a.reference[:, None, None], np.nan)
    assert not np.allclose(d[0], d[1], equal_nan=True)


def test_operando_bad_input():
    with pytest.raises(ValueError, match="frame_interval"):
        operando_series(n_frames=2, frame_interval=0)
    with pytest.raises(ValueError, match="n_frames"):
        operando_series(n_frames=0)
