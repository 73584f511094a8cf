"""io/stxm.py: NeXus NXstxm reader and stacks from per-energy images."""

import h5py
import numpy as np
import pytest

from hyperspy_chemomech.io import load_nxstxm, stack_from_images
from hyperspy_chemomech.signals import XrayAbsorptionSpectrum
from hyperspy_chemomech.simulate import synthetic_xray_stack


def _write_nxstxm(path, counts_yxe, energies, dy_um=0.02, dx_um=0.025, order="eyx",
                  energy_units="eV", control=None, x_reversed=False):
    """A minimal NXstxm 'sample image stack' as written by STXM beamlines."""
    ny, nx, ne = counts_yxe.shape
    perm = {"eyx": (2, 0, 1), "yxe": (0, 1, 2)}[order]
    names = {"eyx": ["energy", "sample_y", "sample_x"],
             "yxe": ["sample_y", "sample_x", "energy"]}[order]
    xs = 10.0 + dx_um * np.arange(nx)
    if x_reversed:
        xs = xs[::-1]
        counts_yxe = counts_yxe[:, ::-1]
    with h5py.File(path, "w") as f:
        f.attrs["default"] = "entry1"
        e = f.create_group("entry1")
        e.attrs["NX_class"] = "NXentry"
        e["definition"] = "NXstxm"
        e["title"] = "LFP particle"
        d = e.create_group("counts")
        d.attrs["NX_class"] = "NXdata"
        d.attrs["signal"] = "data"
        d.attrs["axes"] = np.array(names, dtype="S")
        for i, n in enumerate(names):
            d.attrs[f"{n}_indices"] = i
        d["stxm_scan_type"] = "sample image stack"
        d["data"] = counts_yxe.transpose(perm)
        d["energy"] = energies / (1e3 if energy_units == "keV" else 1.0)
        d["energy"].attrs["units"] = energy_units
        d["sample_y"] = 5.0 + dy_um * np.arange(ny)
        d["sample_y"].attrs["units"] = "um"
        d["sample_x"] = xs
        d["sample_x"].attrs["units"] = "um"
        if control is not None:
            c = e.create_group("control")
            c.attrs["NX_class"] = "NXmonitor"
            c["data"] = control
    return path


@pytest.fixture(scope="module")
def sim():
    return synthetic_xray_stack(shape=(24, 20), n_energies=30, max_drift=0, seed=11)


@pytest.mark.parametrize("order", ["eyx", "yxe"])
def test_load_nxstxm_roundtrip(tmp_path, sim, order):
    stack, truth = sim
    ctrl = np.linspace(1.0, 1.2, 30)
    p = _write_nxstxm(tmp_path / "s.h5", stack.data, truth["energies"], order=order,
                      control=ctrl)
    s = load_nxstxm(p)
    assert isinstance(s, XrayAbsorptionSpectrum)
    np.testing.assert_array_equal(s.data, stack.data)
    ax = s.axes_manager[-1]
    assert ax.units == "eV" and not ax.is_uniform
    np.testing.assert_allclose(ax.axis, truth["energies"])
    yax, xax = s.axes_manager.navigation_axes[::-1]
    assert (yax.units, xax.units) == ("nm", "nm")
    assert yax.scale == pytest.approx(20.0) and xax.scale == pytest.approx(25.0)
    assert yax.offset == pytest.approx(5000.0) and xax.offset == pytest.approx(10000.0)
    info = s.metadata.Chemomech.nxstxm
    np.testing.assert_allclose(info.control, ctrl)
    assert info.definition == "NXstxm" and info.entry == "entry1"
    assert s.metadata.General.title == "LFP particle"
    # the loaded stack runs through the whole chain
    comp = s.to_optical_density().get_composition_map(truth["references"])
    m = truth["mask"]
    assert np.sqrt(np.nanmean((np.asarray(comp.data)[m] - truth["X"][m]) ** 2)) < 0.05


def test_load_nxstxm_kev_reversed_x_and_lazy(tmp_path, sim):
    stack, truth = sim
    p = _write_nxstxm(tmp_path / "k.h5", stack.data, truth["energies"],
                      energy_units="keV", x_reversed=True)
    s = load_nxstxm(p)
    np.testing.assert_allclose(s.axes_manager[-1].axis, truth["energies"], rtol=1e-12)
    np.testing.assert_array_equal(s.data, stack.data)  # x flipped back to increasing
    lz = load_nxstxm(p, lazy=True)
    assert lz._lazy
    np.testing.assert_array_equal(lz.data.compute(), stack.data)


def test_load_nxstxm_errors(tmp_path, sim):
    stack, truth = sim
    p = tmp_path / "bad.h5"
    with h5py.File(p, "w") as f:
        f.create_group("x")
    with pytest.raises(ValueError, match="NXentry"):
        load_nxstxm(p)
    p2 = _write_nxstxm(tmp_path / "e.h5", stack.data, truth["energies"][::-1].copy())
    with h5py.File(p2, "a") as f:  # shuffle the energies: not monotonic
        e = f["entry1/counts/energy"][()]
        e[[3, 10]] = e[[10, 3]]
        f["entry1/counts/energy"][...] = e
    with pytest.raises(ValueError, match="strictly increasing"):
        load_nxstxm(p2)
    p3 = _write_nxstxm(tmp_path / "m.h5", stack.data, truth["energies"])
    with h5py.File(p3, "a") as f:
        del f["entry1/counts/energy"]
        f["entry1/counts/energy"] = truth["energies"][:-1]
    with pytest.raises(ValueError, match="energy axis"):
        load_nxstxm(p3)
    with pytest.raises(ValueError, match="no NXentry"):
        load_nxstxm(p3, entry="entry9")


def test_stack_from_real_images(sim):
    stack, truth = sim
    e = truth["energies"]
    imgs = [stack.data[..., k] for k in range(e.size)]
    order = np.random.default_rng(0).permutation(e.size)
    s = stack_from_images([imgs[i] for i in order], e[order], pixel_size=20.0)
    np.testing.assert_array_equal(s.data, stack.data)  # sorted by energy
    np.testing.assert_allclose(s.axes_manager[-1].axis, e)
    assert s.axes_manager[0].units == "nm" and s.axes_manager[0].scale == 20.0
    with pytest.raises(ValueError, match="share one energy"):
        stack_from_images(imgs[:2], [700.0, 700.0], pixel_size=1.0)
    with pytest.raises(ValueError, match="images but"):
        stack_from_images(imgs[:3], e[:2], pixel_size=1.0)
    with pytest.raises(ValueError, match="one shape"):
        stack_from_images([imgs[0], imgs[1][:5]], e[:2], pixel_size=1.0)


def test_stack_from_complex_ptychography_images(sim):
    stack, truth = sim
    e = truth["energies"]
    amp = np.exp(-truth["od"] / 2)  # |T| = exp(-OD / 2)
    phase = 0.3 * truth["od"]  # some phase shift, kept aside
    T = amp * np.exp(1j * phase)
    s = stack_from_images([T[..., k] for k in range(e.size)], e, pixel_size=(15.0, 15.0))
    np.testing.assert_allclose(s.metadata.Chemomech.ptychography.phase, phase, atol=1e-12)
    assert s.metadata.Chemomech.source.counts is False
    od = s.to_optical_density(i0=1.0)
    np.testing.assert_allclose(od.data, truth["od"], atol=1e-12)
    comp = od.get_composition_map(truth["references"])
    assert comp.metadata.Chemomech.composition_map.noise == "residual"
    m = truth["mask"]
    np.testing.assert_allclose(np.asarray(comp.data)[m], truth["X"][m], atol=1e-8)
