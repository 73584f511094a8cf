"""Every reader's error names the file and says what is wrong with it."""

import re

import h5py
import numpy as np
import pytest
from scipy.io import savemat

import hyperspy_chemomech as hcm
from hyperspy_chemomech.diffraction import from_pyxem
from hyperspy_chemomech.io import (load_als_stxm, load_correlative_mat, load_cxi, load_nxstxm,
                                   load_py4dstem_strain)

READERS = {
    "nxstxm": lambda p: load_nxstxm(p),
    "correlative_mat": lambda p: load_correlative_mat(p, pixel_size=1.0),
    "py4dstem": lambda p: load_py4dstem_strain(p, pixel_size=1.0),
    "cxi": lambda p: load_cxi(p),
}


def _hdf5(path):
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(5000.0)
    return path


def _bad_file(tmp_path, kind):
    """A file of the given kind, named so that the reader cannot guess from it."""
    p = tmp_path / f"particle_{kind}.h5"
    if kind == "text":
        p.write_text("energy,counts\n708.0,1234\n709.0,1200\n")
    elif kind == "png":
        import matplotlib.pyplot as plt

        plt.imsave(p, np.random.default_rng(0).random((8, 8)), format="png")
    elif kind == "empty":
        p.write_bytes(b"")
    elif kind == "corrupted_superblock":
        b = bytearray(_hdf5(p).read_bytes())
        b[8:48] = b"\xff" * 40  # the signature stays, the superblock after it is garbage
        p.write_bytes(bytes(b))
    elif kind == "truncated":
        b = _hdf5(p).read_bytes()
        p.write_bytes(b[: len(b) // 3])
    elif kind == "folder":
        p.mkdir()
    elif kind == "binary":
        p.write_bytes(bytes(range(256)) * 4)
    return p


EXPECTED = {
    "text": "text file",
    "png": "PNG image",
    "empty": "empty",
    "corrupted_superblock": "corrupted",
    "truncated": "corrupted or truncated",
    "folder": "folder",
    "binary": "unknown format",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
@pytest.mark.parametrize("reader", sorted(READERS))
def test_bad_files_are_named_and_described(tmp_path, reader, kind):
    p = _bad_file(tmp_path, kind)
    with pytest.raises(ValueError) as info:
        READERS[reader](p)
    msg = str(info.value)
    assert str(p) in msg, msg
    assert EXPECTED[kind] in msg, msg
    assert "file signature not found" not in msg or "corrupted" in msg


@pytest.mark.parametrize("kind", ["text", "png", "empty", "folder", "binary"])
def test_bad_hdr_files_are_named_and_described(tmp_path, kind):
    """The ALS .hdr reader reads text: the same bad files, named and described."""
    p = _bad_file(tmp_path, kind)
    with pytest.raises(ValueError) as info:
        load_als_stxm(p)
    msg = str(info.value)
    assert str(p) in msg and EXPECTED[kind] in msg, msg


@pytest.mark.parametrize("reader", sorted(READERS) + ["als_stxm"])
def test_missing_file(tmp_path, reader):
    p = tmp_path / "nope.h5"
    read = load_als_stxm if reader == "als_stxm" else READERS[reader]
    with pytest.raises(FileNotFoundError, match=re.escape(str(p))):
        read(p)


@pytest.mark.parametrize("reader,missing", [("nxstxm", "NXentry"), ("cxi", "not CXI"),
                                            ("correlative_mat", "'exx'"),
                                            ("py4dstem", "no py4DSTEM strain map")])
def test_hdf5_without_the_readers_content(tmp_path, reader, missing):
    p = _hdf5(tmp_path / "other.h5")
    with pytest.raises(ValueError) as info:
        READERS[reader](p)
    assert str(p) in str(info.value) and missing in str(info.value), str(info.value)


def test_mat_v5_missing_variables_and_mat_given_to_hdf5_readers(tmp_path):
    p = tmp_path / "maps.mat"
    savemat(p, {"exx": np.zeros((3, 3)), "FP": np.zeros((3, 3))})
    with pytest.raises(ValueError) as info:
        load_correlative_mat(p, pixel_size=1.0)
    msg = str(info.value)
    assert str(p) in msg and "'eyy'" in msg and "'LFP'" in msg, msg
    with pytest.raises(ValueError, match=r"MATLAB v5 \.mat file") as info:
        load_nxstxm(p)
    assert str(p) in str(info.value)


def test_deep_errors_name_the_file(tmp_path):
    """Messages raised deep inside a reader (units, shapes) carry the file's name too."""
    p = tmp_path / "stack.h5"
    with h5py.File(p, "w") as f:
        e = f.create_group("entry1")
        e.attrs["NX_class"] = "NXentry"
        d = e.create_group("counts")
        d.attrs["NX_class"] = "NXdata"
        d.attrs["signal"] = "data"
        d.attrs["axes"] = np.array(["energy", "sample_y", "sample_x"], dtype="S")
        d["data"] = np.ones((3, 4, 5))
        d["energy"] = [700.0, 701.0, 702.0]
        d["energy"].attrs["units"] = "J"
        d["sample_y"], d["sample_x"] = np.arange(4.0), np.arange(5.0)
    with pytest.raises(ValueError, match="energy units 'J'") as info:
        load_nxstxm(p)
    assert str(p) in str(info.value)
    q = tmp_path / "maps.mat"
    v = {k: np.zeros((3, 4)) for k in ("exx", "eyy", "exy", "theta", "FP", "LFP")}
    v["eyy"] = np.zeros((4, 4))
    savemat(q, v)
    with pytest.raises(ValueError, match="shape") as info:
        load_correlative_mat(q, pixel_size=1.0)
    assert str(q) in str(info.value)


@pytest.mark.parametrize("convert", [from_pyxem, hcm.StrainField.from_pyxem])
def test_from_pyxem_given_a_plain_array(convert):
    with pytest.raises(TypeError, match=r"ndarray of shape \(4, 5, 5\).*from_components"):
        convert(np.zeros((4, 5, 5)))
    with pytest.raises(TypeError, match="list"):
        convert([[0.0]])


def test_py4dstem_source_of_the_wrong_type():
    with pytest.raises(TypeError, match="got ndarray"):
        load_py4dstem_strain(np.zeros((4, 5, 5)), pixel_size=1.0)
