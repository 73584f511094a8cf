"""ALS STXM .hdr/.xim stacks and CXI ptychography reconstructions (tests/data/make_xray_fixtures.py).

The STXM fixture is also read by MANTiS 3.3 (its reading is in als_stxm_mantis.npz):
ours must read it the same way. The CXI fixture follows the layout COSMIC writes.
"""

import pathlib
import shutil

import h5py
import numpy as np
import pytest

from hyperspy_chemomech.io import load_als_stxm, load_cxi, parse_hdr
from hyperspy_chemomech.signals import XrayAbsorptionSpectrum

DATA = pathlib.Path(__file__).parent / "data"
HDR = DATA / "als_stxm" / "Stack_001.hdr"
CXI = sorted((DATA / "cxi").glob("*.cxi"))


@pytest.fixture(scope="module")
def truth():
    return dict(np.load(DATA / "xray_truth.npz"))


# ------------------------------------------------------------------ ALS .hdr/.xim
def test_als_stxm_reads_energies_pixel_size_counts_dwell(truth):
    s = load_als_stxm(HDR)
    assert isinstance(s, XrayAbsorptionSpectrum)
    np.testing.assert_array_equal(s.axes_manager.signal_axes[0].axis, truth["energies"])
    xax, yax = s.axes_manager.navigation_axes
    assert (xax.size, yax.size) == (7, 5)
    assert xax.scale == pytest.approx(40.0, rel=1e-9) and yax.scale == pytest.approx(50.0, rel=1e-9)
    assert xax.units == yax.units == "nm"
    assert xax.offset == pytest.approx(4012.50e3) and yax.offset == pytest.approx(2101.00e3)
    # counts = 1000 + 100 e + 10 y + x: every index in its place
    np.testing.assert_array_equal(s.data, truth["stxm_counts"].transpose(1, 2, 0))
    info = s.metadata.Chemomech.als_stxm
    assert info.dwell_ms == truth["dwell_ms"] == 1.5
    assert info.channel == "Counter0" and info.flags == "Image Stack"
    np.testing.assert_array_equal(info.ring_current_mA, truth["ring_ma"])
    assert s.metadata.Chemomech.source.counts is True


def test_als_stxm_reads_as_mantis_does():
    m = np.load(DATA / "als_stxm_mantis.npz")
    assert str(m["mantis_version"]) == "3.3.0"
    s = load_als_stxm(HDR)
    np.testing.assert_array_equal(s.data.transpose(1, 0, 2), m["absdata"])  # MANTiS: (x, y, E)
    np.testing.assert_array_equal(s.axes_manager.signal_axes[0].axis, m["ev"])
    xax, yax = s.axes_manager.navigation_axes
    np.testing.assert_allclose(xax.axis, m["x_dist"] * 1e3, rtol=1e-12)
    np.testing.assert_allclose(yax.axis, m["y_dist"] * 1e3, rtol=1e-12)
    np.testing.assert_array_equal(m["data_dwell"], s.metadata.Chemomech.als_stxm.dwell_ms)


def test_hdr_parser_structures():
    hdr = parse_hdr(HDR)
    sd = hdr["ScanDefinition"]
    assert sd["Regions"][0] == 1 and sd["Regions"][1]["PAxis"]["Name"] == "Sample X"
    assert sd["StackAxis"]["Points"] == [4, 700, 705, 708.5, 710]
    assert hdr["ImageScan"]["Point Delay"] == 0.0  # names with spaces
    assert hdr["Channels"][1]["UnitName"] == "counts"  # the beamline's channel table


def _copy_stack(tmp_path):
    d = tmp_path / "stack"
    shutil.copytree(HDR.parent, d)
    return d / HDR.name


def test_als_stxm_reversed_scan_and_channel(tmp_path, truth):
    hdr = _copy_stack(tmp_path)
    text = hdr.read_text()
    # the same stack scanned right to left: Points decreasing, images mirrored
    pts = "4012.50, 4012.54, 4012.58, 4012.62, 4012.66, 4012.70, 4012.74"
    text = text.replace(pts, ", ".join(reversed(pts.split(", ")))).replace(
        "Max = 4012.74; Dir = 1", "Max = 4012.74; Dir = -1")
    hdr.write_text(text)
    for xim in hdr.parent.glob("*.xim"):
        img = np.loadtxt(xim)
        np.savetxt(xim, img[:, ::-1], fmt="%d", delimiter="\t")
    s = load_als_stxm(hdr, channel="Counter0")
    np.testing.assert_array_equal(s.data, truth["stxm_counts"].transpose(1, 2, 0))
    assert s.axes_manager.navigation_axes[0].offset == pytest.approx(4012.50e3)
    with pytest.raises(ValueError, match="no channel 'PMT'.*Counter0"):
        load_als_stxm(hdr, channel="PMT")


def test_als_stxm_errors_name_the_file(tmp_path):
    hdr = _copy_stack(tmp_path)
    (hdr.parent / "Stack_001_a002.xim").unlink()
    with pytest.raises(FileNotFoundError, match=r"Stack_001_a002\.xim") as info:
        load_als_stxm(hdr)
    assert str(hdr) in str(info.value)
    np.savetxt(hdr.parent / "Stack_001_a002.xim", np.zeros((4, 7)), fmt="%d")
    with pytest.raises(ValueError, match=r"Stack_001_a002\.xim has shape \(4, 7\)"):
        load_als_stxm(hdr)
    png = tmp_path / "image.hdr"
    import matplotlib.pyplot as plt

    plt.imsave(png, np.zeros((4, 4)), format="png")
    with pytest.raises(ValueError, match="PNG image") as info:
        load_als_stxm(png)
    assert str(png) in str(info.value)
    empty = tmp_path / "empty.hdr"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty"):
        load_als_stxm(empty)
    line = tmp_path / "line.hdr"
    line.write_text(hdr.read_text().replace('Flags = "Image Stack"', 'Flags = "Image"'))
    with pytest.raises(ValueError, match="'Image'.*not an image stack") as info:
        load_als_stxm(line)
    assert str(line) in str(info.value)


# ------------------------------------------------------------------ CXI
def test_cxi_stack_energies_pixel_size_od_and_phase(truth):
    s = load_cxi(CXI[::-1])  # any order: sorted by energy
    assert isinstance(s, XrayAbsorptionSpectrum)
    np.testing.assert_allclose(s.axes_manager.signal_axes[0].axis, truth["cxi_energies"],
                               rtol=1e-12)
    for ax in s.axes_manager.navigation_axes:
        assert ax.scale == pytest.approx(float(truth["cxi_pixel_nm"]), rel=1e-9)
        assert ax.units == "nm"
    assert s.axes_manager.navigation_shape == (28, 20)
    assert "corner_position" in s.metadata.Chemomech.cxi.pixel_size_source
    assert s.metadata.Chemomech.source.counts is False
    # amplitude -> optical density (I0 from the empty pixels), phase kept
    od = s.to_optical_density()
    np.testing.assert_allclose(od.data, truth["cxi_od"].transpose(1, 2, 0), atol=1e-6)
    np.testing.assert_allclose(s.metadata.Chemomech.ptychography.phase,
                               truth["cxi_phase"].transpose(1, 2, 0), atol=1e-6)


def test_cxi_errors_name_the_file(tmp_path):
    other = tmp_path / "plain.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(ValueError, match="not CXI") as info:
        load_cxi(other)
    assert str(other) in str(info.value)
    real = tmp_path / "real.cxi"
    shutil.copy(CXI[0], real)
    with h5py.File(real, "a") as f:
        amp = np.abs(f["entry_1/image_1/data"][()])
        del f["entry_1/image_1/data"]
        f["entry_1/image_1/data"] = amp
    with pytest.raises(ValueError, match="is real") as info:
        load_cxi(real)
    assert str(real) in str(info.value)
    small = tmp_path / "small.cxi"
    shutil.copy(CXI[1], small)
    with h5py.File(small, "a") as f:
        obj = f["entry_1/image_1/data"][()]
        del f["entry_1/image_1/data"]
        f["entry_1/image_1/data"] = obj[:10]
    with pytest.raises(ValueError, match="different shapes"):
        load_cxi([CXI[0], small])
    with pytest.raises(ValueError, match="text file") as info:
        (tmp_path / "notes.cxi").write_text("energy 708 eV\n")
        load_cxi(tmp_path / "notes.cxi")
    assert "notes.cxi" in str(info.value)


def test_cxi_pixel_sizes_must_agree_or_be_given(tmp_path):
    moved = tmp_path / "moved.cxi"
    shutil.copy(CXI[1], moved)
    with h5py.File(moved, "a") as f:
        f["entry_1/instrument_1/detector_1/corner_position"][2] *= 1.1  # 10 % other NA
    with pytest.raises(ValueError, match="pixel sizes differ"):
        load_cxi([CXI[0], moved])
    s = load_cxi([CXI[0], moved], pixel_size=5.0)
    assert s.metadata.Chemomech.cxi.pixel_size_source == "given"


# ------------------------------------------------------------------ NXstxm, both conventions
@pytest.mark.parametrize("name", ["nxstxm_nexusformat", "nxstxm_mantis"])
def test_nxstxm_written_by_nexusformat_and_the_mantis_variant(truth, name):
    from hyperspy_chemomech.io import load_nxstxm

    s = load_nxstxm(DATA / f"{name}.h5")
    np.testing.assert_array_equal(s.data, truth["nxstxm_counts"].transpose(1, 2, 0))
    np.testing.assert_array_equal(s.axes_manager.signal_axes[0].axis, truth["nxstxm_energies"])
    xax, yax = s.axes_manager.navigation_axes
    assert (xax.scale, xax.offset) == (pytest.approx(30.0), pytest.approx(120.0e3))
    assert (yax.scale, yax.offset) == (pytest.approx(25.0), pytest.approx(-8.0e3))
    info = s.metadata.Chemomech.nxstxm
    assert info.definition == "NXstxm"
    assert s.metadata.General.title.startswith("LFP particle (")
    np.testing.assert_array_equal(info.count_time, truth["nxstxm_dwell_ms"])
    if name == "nxstxm_mantis":  # MANTiS 3.3 reads this file the same way
        m = np.load(DATA / "nxstxm_mantis_reading.npz")
        np.testing.assert_array_equal(s.data.transpose(1, 0, 2), m["absdata"])
        np.testing.assert_array_equal(s.axes_manager.signal_axes[0].axis, m["ev"])
        np.testing.assert_allclose(xax.axis, m["x_dist"] * 1e3)
        np.testing.assert_array_equal(m["data_dwell"], info.count_time)
    else:
        assert info.count_time_units == "ms"
        np.testing.assert_allclose(info.control, np.linspace(1.0, 1.1, 4))
