"""Every result class survives .save() / hs.load() in hspy and zspy, metadata included.

zspy needs zarr 2 (rosettasciio 0.15's writer breaks with zarr 3) and msgpack; both
are base dependencies, so these tests run after a plain ``pip install -e .``.
"""

import numpy as np
import pytest

import hyperspy.api as hs

from hyperspy_chemomech.simulate import make_particle, synthetic_xray_stack


@pytest.fixture(scope="module")
def results():
    """One of each result class, made by the pipeline, each with its metadata."""
    stack, truth = synthetic_xray_stack(shape=(32, 32), n_energies=40, max_drift=0.0, seed=3)
    od = stack.to_optical_density()
    comp = od.get_composition_map(truth["references"])
    p = make_particle(shape=(40, 70), pixel_size=5.0, blur_factor=3, noise=5e-4, seed=8)
    strain = p.strain_field()
    variance = np.full(strain.data.shape, 2.5e-7)
    variance[:, ~p.mask] = np.nan
    strain.metadata.set_item("Signal.Noise_properties.variance", hs.signals.Signal2D(variance))
    strain = strain.rotate_basis(0.3)  # records Chemomech.basis.angle
    law = p.strain_field().learn_eigenstrain(p.composition_map(), degree=1)
    return {"xray_absorption (counts)": stack, "xray_absorption (OD)": od,
            "composition_map": comp, "strain_field": strain, "eigenstrain_law": law}


def _assert_same_tree(a, b, where):
    """Recursive equality of two metadata dictionaries (NaN equals NaN)."""
    if isinstance(a, dict):
        assert isinstance(b, dict), (where, type(b))
        assert sorted(a) == sorted(b), (where, sorted(a), sorted(b))
        for k in a:
            _assert_same_tree(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype.kind == b.dtype.kind, (where, a.shape, b.shape,
                                                                     a.dtype, b.dtype)
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), (where, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tree(x, y, f"{where}[{i}]")
    elif isinstance(a, (bool, int, float, np.number, np.bool_)):
        # HDF5 attributes come back as numpy scalars: same kind and value
        kind = lambda v: np.asarray(v).dtype.kind.replace("u", "i")  # noqa: E731
        assert kind(a) == kind(b), (where, a, b)
        assert a == b or (np.isnan(a) and np.isnan(b)), (where, a, b)
    else:
        assert a == b and type(a) is type(b), (where, a, b)


def _assert_same_axes(s, r):
    for a, b in zip(s.axes_manager._axes, r.axes_manager._axes):
        assert (a.name, a.units, a.navigate, a.is_uniform) == (b.name, b.units, b.navigate,
                                                               b.is_uniform)
        np.testing.assert_array_equal(a.axis, b.axis)


@pytest.mark.parametrize("ext", ["hspy", "zspy"])
@pytest.mark.parametrize("name", ["xray_absorption (counts)", "xray_absorption (OD)",
                                  "composition_map", "strain_field", "eigenstrain_law"])
def test_result_round_trip(tmp_path, results, name, ext):
    s = results[name]
    f = tmp_path / f"result.{ext}"
    s.save(f)
    r = hs.load(f)
    assert type(r) is type(s)
    np.testing.assert_array_equal(np.asarray(r.data), np.asarray(s.data))
    _assert_same_axes(s, r)
    meta = s.metadata.as_dictionary()
    back = r.metadata.as_dictionary()
    # what the file format adds about itself is not ours to compare
    back["General"].pop("original_filename", None)
    back["General"].pop("FileIO", None)
    meta["General"].pop("FileIO", None)
    _assert_same_tree(meta["Chemomech"] if "Chemomech" in meta else {},
                      back.get("Chemomech", {}), "Chemomech")
    _assert_same_tree(meta, back, "metadata")
    # lazy loading gives the lazy twin of the same class
    lz = hs.load(f, lazy=True)
    assert type(lz).__name__ == "Lazy" + type(s).__name__


@pytest.mark.parametrize("ext", ["hspy", "zspy"])
def test_reloaded_results_still_work(tmp_path, results, ext):
    """The carried metadata is usable after loading, not only present."""
    comp, law, strain = (results[k] for k in ("composition_map", "eigenstrain_law",
                                              "strain_field"))
    for k, s in (("c", comp), ("l", law), ("s", strain)):
        s.save(tmp_path / f"{k}.{ext}")
    c2, l2, s2 = (hs.load(tmp_path / f"{k}.{ext}") for k in "cls")
    np.testing.assert_array_equal(c2.thickness.data, comp.thickness.data)
    np.testing.assert_array_equal(c2.particle_mask, comp.particle_mask)
    np.testing.assert_array_equal(l2.evaluate([0.2, 0.8]), law.evaluate([0.2, 0.8]))
    np.testing.assert_array_equal(l2.vegard()["ci95"], law.vegard()["ci95"])
    v = s2.metadata.Signal.Noise_properties.variance
    np.testing.assert_array_equal(np.asarray(v.data), strain.metadata.Signal.Noise_properties
                                  .variance.data)
    assert s2.metadata.Chemomech.basis.angle == pytest.approx(0.3)
    np.testing.assert_array_equal(s2.particle_mask, strain.particle_mask)
