"""load_py4dstem_strain on files written by py4DSTEM itself (tests/data/make_py4dstem_fixtures.py).

py4DSTEM 0.14.18 measured the strain from diffraction patterns of a known field; the
script kept py4DSTEM's own in-memory arrays and the imposed field in
py4dstem_truth.npz. Checked here: the reader finds the maps in each emdfile layout,
gives py4DSTEM's numbers after the documented conversion, NaN where py4DSTEM's mask
is 0, and the sign of every component of the imposed strain.
"""

import pathlib
import shutil

import h5py
import numpy as np
import pytest

import hyperspy_chemomech as hcm
from hyperspy_chemomech.io import load_py4dstem_strain

DATA = pathlib.Path(__file__).parent / "data"
FILES = {  # file -> (coordinate_rotation of its get_strain, rad; emdfile group)
    "py4dstem_strainmap": (0.0, "datacube_root/strainmap"),
    "py4dstem_tree_rotated": (np.radians(25.0), "datacube_root/braggvectors/strainmap"),
    "py4dstem_realslice": (0.0, "strain_map_root/strain_map"),
}
COMPONENTS = ("e11", "e22", "e12", "theta")
# the script's imposed H0 (its header): the strained region has these signs
IMPOSED = {"e11": 0.012, "e22": -0.008, "e12": 0.005, "theta": -0.004}


@pytest.fixture(scope="module")
def truth():
    return dict(np.load(DATA / "py4dstem_truth.npz"))


def _load(name, **kw):
    rotation, _ = FILES[name]
    if name == "py4dstem_realslice":
        kw.setdefault("pixel_size", 2.5)  # a bare RealSlice has no length calibration
    return load_py4dstem_strain(DATA / f"{name}.h5", coordinate_rotation=rotation, **kw)


def _documented_conversion(own, rotation):
    """The docstring's conversion, written out: beta from the four maps, rotated back,
    x and y swapped, H = inv(beta).T - I, components of H."""
    exx, eyy, exy, th = (own[k] for k in ("e_xx", "e_yy", "e_xy", "theta"))
    out = np.full((4,) + exx.shape, np.nan)
    c, s = np.cos(rotation), np.sin(rotation)
    R = np.array([[c, -s], [s, c]])
    P = np.array([[0.0, 1.0], [1.0, 0.0]])
    for idx in zip(*np.nonzero(own["mask"] != 0)):
        beta = np.array([[1 - exx[idx], th[idx] - exy[idx]],
                         [-exy[idx] - th[idx], 1 - eyy[idx]]])
        H = np.linalg.inv(P @ R @ beta @ R.T @ P).T - np.eye(2)
        out[:, idx[0], idx[1]] = (H[0, 0], H[1, 1], (H[0, 1] + H[1, 0]) / 2,
                                  (H[1, 0] - H[0, 1]) / 2)
    return out


def test_fixture_script_records_its_environment(truth):
    header = (DATA / "make_py4dstem_fixtures.py").read_text()
    python, py4dstem, emdfile, numpy = truth["versions"]
    assert (py4dstem, emdfile) == ("0.14.18", "0.0.16") and numpy.startswith("1.")
    for v in (f"python {python}", f"py4DSTEM {py4dstem}", f"emdfile {emdfile}",
              f"numpy {numpy}"):
        assert v in header, v
    for name, value in IMPOSED.items():
        assert f"{name} = {value:+.3f}" in header
    np.testing.assert_allclose(truth["components"][:, truth["f"] == 1].T,
                               np.tile([IMPOSED[k] for k in COMPONENTS], (np.sum(truth["f"] == 1), 1)),
                               atol=1e-15)
    for name in FILES:  # a few hundred kB at most
        assert (DATA / f"{name}.h5").stat().st_size < 200_000


@pytest.mark.parametrize("name", sorted(FILES))
def test_fixture_equals_py4dstems_arrays(truth, name):
    sf = _load(name)
    assert isinstance(sf, hcm.StrainField)
    own = {k[len(name) + 1:]: v for k, v in truth.items() if k.startswith(name + "_")}
    mask = own["mask"] != 0
    # py4DSTEM's own mask: the particle (vacuum outside has only the direct beam)
    np.testing.assert_array_equal(mask, truth["particle"])
    assert 0 < mask.sum() < mask.size
    # NaN exactly outside the mask, finite inside
    np.testing.assert_array_equal(np.isfinite(sf.data), np.broadcast_to(mask, sf.data.shape))
    expected = _documented_conversion(own, FILES[name][0])
    for i, comp in enumerate(COMPONENTS):
        rms = np.sqrt(np.mean((sf.data[i][mask] - expected[i][mask]) ** 2))
        assert rms <= 1e-6, (name, comp, rms)
    if FILES[name][0] == 0.0:
        # first order, the documented mapping is (e_yy, e_xx, e_xy, theta)
        first = np.stack([own["e_yy"], own["e_xx"], own["e_xy"], own["theta"]])
        np.testing.assert_allclose(sf.data[:, mask], first[:, mask], atol=3e-4)
    info = sf.metadata.Chemomech.load_py4dstem_strain
    assert info.emdpath == FILES[name][1]
    assert info.python_class == ("RealSlice" if name == "py4dstem_realslice" else "StrainMap")


@pytest.mark.parametrize("name", sorted(FILES))
def test_fixture_has_the_imposed_strain(truth, name):
    """The signs of the strain the script imposed (checks the conversion, not restates it)."""
    sf = _load(name)
    strained = (truth["f"] > 0.5) & truth["particle"]
    assert strained.sum() >= 30
    comps = truth["components"]
    for i, comp in enumerate(COMPONENTS):
        got = sf.data[i][strained]
        assert np.all(np.sign(got) == np.sign(IMPOSED[comp])), (name, comp, got)
        # and the size: py4DSTEM's fit is good to ~5 % of each component here
        m = truth["particle"]
        rms = np.sqrt(np.mean((sf.data[i][m] - comps[i][m]) ** 2))
        assert rms <= 0.1 * abs(IMPOSED[comp]), (name, comp, rms)
    # the reference region is unstrained
    ref = truth["reference"]
    assert np.abs(sf.data[:, ref]).max() < 1e-3


def test_rotation_sign_matters(truth):
    """The rotated map with the opposite angle is off by the strain itself."""
    rotation, _ = FILES["py4dstem_tree_rotated"]
    wrong = load_py4dstem_strain(DATA / "py4dstem_tree_rotated.h5",
                                 coordinate_rotation=-rotation)
    m = truth["particle"]
    err = np.sqrt(np.mean((wrong.data[0][m] - truth["components"][0][m]) ** 2))
    assert err > 0.5 * IMPOSED["e11"]


def test_pixel_size_from_py4dstem_calibration_or_required(truth):
    sf = _load("py4dstem_strainmap")
    assert [(ax.scale, ax.units) for ax in sf.axes_manager.signal_axes] == [(2.5, "nm")] * 2
    assert float(truth["r_pixel_nm"]) == 2.5
    meta = sf.metadata.Chemomech.load_py4dstem_strain
    assert meta.pixel_size_source == "py4DSTEM calibration R_pixel_size"
    assert meta.qr_rotation_degrees == 0.0 and meta.qr_flip is False
    path = DATA / "py4dstem_realslice.h5"
    with pytest.raises(ValueError, match=r"pixel_size .*'pixels'") as info:
        load_py4dstem_strain(path)
    assert str(path) in str(info.value)
    given = load_py4dstem_strain(path, pixel_size=(2.0, 3.0))
    assert [ax.scale for ax in given.axes_manager.signal_axes] == [3.0, 2.0]  # (x, y)


def test_several_strain_maps_need_emdpath(tmp_path):
    """A file with two py4DSTEM trees (groups copied as py4DSTEM wrote them)."""
    path = tmp_path / "two.h5"
    shutil.copy(DATA / "py4dstem_tree_rotated.h5", path)
    with h5py.File(path, "a") as f, h5py.File(DATA / "py4dstem_realslice.h5", "r") as g:
        g.copy("strain_map_root", f)
    with pytest.raises(ValueError, match="emdpath") as info:
        load_py4dstem_strain(path, pixel_size=1.0)
    msg = str(info.value)
    assert str(path) in msg and "datacube_root/braggvectors/strainmap" in msg
    sf = load_py4dstem_strain(path, emdpath="strain_map_root/strain_map", pixel_size=2.5)
    ref = _load("py4dstem_realslice")
    np.testing.assert_array_equal(sf.data, ref.data)
    with pytest.raises(ValueError, match="not a py4DSTEM strain map"):
        load_py4dstem_strain(path, emdpath="datacube_root/braggvectors", pixel_size=1.0)


def test_reference_region_recorded(truth):
    ref = truth["reference"]
    sf = _load("py4dstem_strainmap", reference_region=ref)
    np.testing.assert_array_equal(sf.metadata.Chemomech.load_py4dstem_strain.reference_mask,
                                  ref)
    with pytest.raises(ValueError, match="reference_region"):
        _load("py4dstem_strainmap", reference_region=ref.astype(int))
