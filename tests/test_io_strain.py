"""Strain maps from other tools: correlative MATLAB files and py4DSTEM results."""

import h5py
import numpy as np
import pytest
from scipy.io import savemat

import hyperspy_chemomech as hcm
from hyperspy_chemomech.fields import components_from_gradient, gradient_from_components
from hyperspy_chemomech.io import load_correlative_mat, load_py4dstem_strain

NY, NX = 12, 15


def _truth(rng):
    """A smooth image-frame field with all four components distinct and nonzero."""
    y, x = np.mgrid[0:NY, 0:NX] / 10.0
    e11 = 4e-3 + 1e-3 * x
    e22 = -2e-3 + 1e-3 * y
    e12 = 1.5e-3 * (1 + x * y)
    theta = 3e-3 - 1e-3 * x
    return np.stack([e11, e22, e12, theta])


def _mat_variables(rng, truth, rot=0.0):
    """What a correlative file holds: strain in the frame at angle `rot`, fills, mask."""
    H_img = gradient_from_components(*truth)
    c, s = np.cos(rot), np.sin(rot)
    R = np.array([[c, -s], [s, c]])
    H_file = R.T @ H_img @ R  # components in the rotated (crystal) frame
    exx, eyy, exy, theta = components_from_gradient(H_file)
    mask = np.ones((NY, NX), bool)
    mask[:, :2] = False
    exx[3, 5] = eyy[3, 5] = 1.0  # a failed pixel, as such files mark it
    theta[3, 5] = 0.0
    fp = rng.uniform(0.2, 1.0, (NY, NX))
    lfp = rng.uniform(0.2, 1.0, (NY, NX))
    fp[0, :] = lfp[0, :] = 0.001  # thin edge: below threshold
    return dict(exx=exx, eyy=eyy, exy=exy, theta=theta, mask=mask.astype(np.uint8),
                FP=fp, LFP=lfp, HAADF=rng.random((NY, NX)), VBF=rng.random((NY, NX)),
                rot=np.array([[rot]]))


def test_correlative_mat_conventions(tmp_path, rng):
    truth = _truth(rng)
    rot = 0.4
    v = _mat_variables(rng, truth, rot)
    path = tmp_path / "particle.mat"
    savemat(path, v)
    strain, comp, images = load_correlative_mat(path, pixel_size=5.0, frame="crystal")

    assert isinstance(strain, hcm.StrainField)
    assert strain.axes_manager.signal_axes[0].scale == 5.0
    assert strain.axes_manager.signal_axes[0].units == "nm"
    data = strain.data
    # failed pixel and outside-mask pixels are NaN
    assert np.isnan(data[:, 3, 5]).all()
    assert np.isnan(data[:, :, :2]).all()
    ok = np.isfinite(data[0])
    ok_truth = np.ones((NY, NX), bool)
    ok_truth[3, 5] = False
    ok_truth[:, :2] = False
    np.testing.assert_array_equal(ok, ok_truth)
    # the crystal-frame maps, rotated by rot, are the image-frame truth
    np.testing.assert_allclose(data[:, ok], truth[:, ok], atol=1e-12)
    assert strain.metadata.Chemomech.load_correlative_mat.crystal_angle == pytest.approx(rot)
    assert strain.metadata.Chemomech.frame.crystal_angle == pytest.approx(rot)

    X = comp.data
    total = v["FP"] + v["LFP"]
    assert np.isnan(X[0]).all()  # below threshold
    np.testing.assert_allclose(X[1:], v["LFP"][1:] / total[1:])
    assert comp.metadata.Signal.signal_type == "composition_map"
    assert set(images) == {"HAADF", "VBF"}
    np.testing.assert_array_equal(images["HAADF"].data, v["HAADF"])


def test_correlative_mat_image_frame_and_rot_override(tmp_path, rng):
    truth = _truth(rng)
    v = _mat_variables(rng, truth, rot=0.0)
    v["rot"] = np.array([[0.7]])
    path = tmp_path / "p.mat"
    savemat(path, v)
    # frame="image": the maps are taken as they are, rot only recorded
    strain = load_correlative_mat(path, pixel_size=2.0, frame="image").strain
    ok = np.isfinite(strain.data[0])
    np.testing.assert_allclose(strain.data[:, ok], truth[:, ok], atol=1e-12)
    # a wrong rotation changes the normal strains (the test can fail)
    wrong = load_correlative_mat(path, pixel_size=2.0, frame="crystal").strain
    assert np.nanmax(np.abs(wrong.data[0] - truth[0])) > 1e-3
    # rot= overrides the file's angle
    same = load_correlative_mat(path, pixel_size=2.0, rot=0.0, frame="crystal").strain
    np.testing.assert_allclose(same.data[:, ok], truth[:, ok], atol=1e-12)


def test_correlative_mat_v73_hdf5(tmp_path, rng):
    """MATLAB v7.3 files are HDF5 with every array stored transposed."""
    truth = _truth(rng)
    v = _mat_variables(rng, truth, rot=0.25)
    path = tmp_path / "v73.mat"
    with h5py.File(path, "w") as f:
        for k, a in v.items():
            f[k] = np.asarray(a).T
        f["pixel_size"] = np.array([[3.0]])
    strain, comp, _ = load_correlative_mat(path, frame="crystal")
    assert strain.axes_manager.signal_axes[1].scale == 3.0
    assert strain.data.shape == (4, NY, NX)
    ok = np.isfinite(strain.data[0])
    np.testing.assert_allclose(strain.data[:, ok], truth[:, ok], atol=1e-12)


def test_correlative_mat_missing_variables(tmp_path, rng):
    v = _mat_variables(rng, _truth(rng))
    del v["LFP"], v["exy"]
    path = tmp_path / "bad.mat"
    savemat(path, v)
    with pytest.raises(ValueError, match=r"missing variable\(s\) 'exy', 'LFP'"):
        load_correlative_mat(path, pixel_size=1.0)


def test_correlative_mat_needs_pixel_size_and_shapes(tmp_path, rng):
    v = _mat_variables(rng, _truth(rng))
    path = tmp_path / "nocal.mat"
    savemat(path, v)
    with pytest.raises(ValueError, match="pixel_size"):
        load_correlative_mat(path)
    v["HAADF"] = np.zeros((3, 3))
    savemat(path, v)
    with pytest.raises(ValueError, match="'HAADF' has shape"):
        load_correlative_mat(path, pixel_size=1.0)


def _py4dstem_maps(H):
    """py4DSTEM's strain maps for a known image-frame gradient field H (ny, nx, 2, 2).

    Reproduces py4DSTEM's ``get_strain_from_reference_g1g2`` on lattice vectors
    written in its (qx, qy) = (row, column) coordinates.
    """
    g_ref_img = np.array([[0.11, 0.02], [-0.03, 0.09]])  # rows g1, g2 as (gx, gy)
    M = g_ref_img[:, ::-1]  # py4DSTEM rows (g_qx, g_qy) = (gy, gx)
    out = {k: np.empty(H.shape[:2]) for k in ("e_xx", "e_yy", "e_xy", "theta")}
    for idx in np.ndindex(H.shape[:2]):
        A = np.linalg.inv(np.eye(2) + H[idx]).T  # reciprocal distortion, image frame
        g_img = g_ref_img @ A.T
        alpha = g_img[:, ::-1]
        beta = np.linalg.lstsq(M, alpha, rcond=None)[0].T
        out["e_xx"][idx] = 1 - beta[0, 0]
        out["e_yy"][idx] = 1 - beta[1, 1]
        out["e_xy"][idx] = -(beta[0, 1] + beta[1, 0]) / 2.0
        out["theta"][idx] = (beta[0, 1] - beta[1, 0]) / 2.0
    return out


def test_py4dstem_conventions(rng):
    truth = _truth(rng)
    H = gradient_from_components(*truth)
    maps = _py4dstem_maps(H)
    # first order: e11 <- e_yy, e22 <- e_xx, e12 <- e_xy, theta <- theta
    np.testing.assert_allclose(maps["e_yy"], truth[0], atol=1e-4)
    np.testing.assert_allclose(maps["e_xx"], truth[1], atol=1e-4)
    np.testing.assert_allclose(maps["theta"], truth[3], atol=1e-4)
    sf = load_py4dstem_strain(maps, pixel_size=(2.0, 3.0))
    np.testing.assert_allclose(sf.data, truth, atol=1e-12)  # exact
    assert [ax.scale for ax in sf.axes_manager.signal_axes] == [3.0, 2.0]


def test_py4dstem_file_and_mask(tmp_path, rng):
    truth = _truth(rng)
    maps = _py4dstem_maps(gradient_from_components(*truth))
    mask = np.ones((NY, NX))
    mask[4, 4] = 0
    labels = ["e_xx", "e_yy", "e_xy", "theta", "mask"]
    path = tmp_path / "strain.emd"
    with h5py.File(path, "w") as f:
        g = f.create_group("root/strain_map")
        d = g.create_dataset("data", data=np.stack([maps[k] for k in labels[:4]] + [mask]))
        d.attrs["slicelabels"] = np.array(labels, dtype="S")
    sf = load_py4dstem_strain(path, pixel_size=1.5)
    assert np.isnan(sf.data[:, 4, 4]).all()
    ok = np.isfinite(sf.data[0])
    np.testing.assert_allclose(sf.data[:, ok], truth[:, ok], atol=1e-12)


def test_py4dstem_bad_input(tmp_path):
    with pytest.raises(ValueError, match="missing slice"):
        load_py4dstem_strain({"e_xx": np.zeros((2, 2))}, pixel_size=1.0)
    maps = {k: np.zeros((2, 2)) for k in ("e_xx", "e_yy", "e_xy", "theta")}
    with pytest.raises(ValueError, match="pixel_size"):
        load_py4dstem_strain(maps)
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match="no py4DSTEM strain map"):
        load_py4dstem_strain(path, pixel_size=1.0)


# -- the authors' files (simulate.write_authors_mat: what LFP50_P2.mat taught) -------------
@pytest.fixture(scope="module")
def rotated_particle():
    from hyperspy_chemomech.simulate import make_particle

    # homogeneous LiFePO4, as the tests below learn with it
    return make_particle(shape=(70, 110), noise=1e-3, n_dislocations=1, crystal_angle=0.25,
                         seed=4, material="LiFePO4")


@pytest.mark.parametrize("sense, include_rot", [("data", True), ("code", True), ("data", False)])
def test_authors_file_frame_found_whatever_rot_says(tmp_path, rotated_particle, sense,
                                                    include_rot):
    """Mirrored crystal axes, the authors' theta sign, fills for failed fits: read back
    exactly, [100] found from rot in either sense (the data pick it) or, without rot,
    from the data alone."""
    from hyperspy_chemomech.simulate import write_authors_mat

    p = rotated_particle
    truth = write_authors_mat(p, tmp_path / "a.mat", sense=sense, include_rot=include_rot)
    strain = load_correlative_mat(tmp_path / "a.mat", pixel_size=p.pixel_size).strain
    f = strain.metadata.Chemomech.frame
    ok = np.isfinite(strain.data[0])
    # failed fits and the outside are NaN, every other pixel is read back
    np.testing.assert_array_equal(ok, p.mask & ~truth["failed"])
    if include_rot:
        assert f.crystal_angle == pytest.approx(0.25, abs=1e-12)
        assert f.source.startswith("file rot") and f.margin > 3
        np.testing.assert_allclose(strain.data[:, ok], p.strain[:, ok], atol=1e-15)
    else:
        assert f.source.startswith("data alone") and f.margin > 3
        assert f.crystal_angle == pytest.approx(0.25, abs=np.deg2rad(0.5))
        np.testing.assert_allclose(strain.data[:, ok], p.strain[:, ok], atol=5e-4)
    assert f.mirrored and f.family == "shear sign flipped" and not f.ambiguous
    assert strain.check_conventions()["ok"]
    # the literal reading of the authors' code is right only when the file was written so
    literal = load_correlative_mat(tmp_path / "a.mat", pixel_size=p.pixel_size, frame="matlab") \
        if include_rot else None
    if literal is not None:
        same = np.allclose(literal.strain.data[:, ok], p.strain[:, ok], atol=1e-12)
        assert same == (sense == "code")


def test_authors_file_learns_the_law_from_its_frame(tmp_path, rotated_particle):
    from hyperspy_chemomech.simulate import write_authors_mat

    p = rotated_particle
    write_authors_mat(p, tmp_path / "a.mat")
    strain, comp, _ = load_correlative_mat(tmp_path / "a.mat", pixel_size=p.pixel_size)
    # the frame travels with the data, through a file too
    import hyperspy.api as hs

    strain.save(tmp_path / "s.hspy")
    back = hs.load(tmp_path / "s.hspy")
    assert back.metadata.Chemomech.frame.as_dictionary() == \
        strain.metadata.Chemomech.frame.as_dictionary()
    law = back.learn_eigenstrain(comp, material="LiFePO4", degree=1, show_progressbar=False)
    assert law.metadata.Chemomech.law.settings.crystal_angle == pytest.approx(0.25)
    assert law.metadata.Chemomech.law.settings.crystal_angle_source.startswith("metadata")
    np.testing.assert_allclose(law.vegard()["slopes"], p.law.slopes, rtol=0.01)


def test_featureless_authors_file_says_the_frame_is_ambiguous(tmp_path, rotated_particle, rng):
    """Pure noise: every reading is as compatible as any other; the reader warns, with
    the candidates' scores, and the learning warns again."""
    import dataclasses

    from hyperspy_chemomech.simulate import write_authors_mat

    p = rotated_particle
    noise = np.where(p.mask, rng.normal(0, 1e-3, p.strain.shape), np.nan)
    write_authors_mat(dataclasses.replace(p, strain=noise), tmp_path / "n.mat", include_rot=False)
    with pytest.warns(UserWarning, match=r"frame is ambiguous.*score"):
        strain, comp, _ = load_correlative_mat(tmp_path / "n.mat", pixel_size=p.pixel_size)
    assert strain.metadata.Chemomech.frame.ambiguous


def test_find_frame_and_check_are_fast_linear_readings(rotated_particle):
    """The gradient basis scores any reading as the direct computation does."""
    from hyperspy_chemomech.decomposition import compatibility_index
    from hyperspy_chemomech.decomposition._conventions import (
        MIRROR,
        CompatibilityBasis,
        rotation_reading,
    )

    p = rotated_particle
    L = rotation_reading(0.4) @ MIRROR
    direct = compatibility_index(np.einsum("ij,jyx->iyx", L, p.strain), p.pixel_size)
    assert CompatibilityBasis(p.strain, p.pixel_size).index(L) == pytest.approx(direct, rel=1e-10)
