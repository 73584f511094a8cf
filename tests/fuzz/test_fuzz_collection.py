"""Fuzz set (issue 15) over the collection calls of issue 17.

``learn_eigenstrain_collection``, ``decompose_collection`` and the two
generators (``simulate.particle_collection``, ``simulate.operando_series``):
bad or unusual input must give an error that names the member, list or
argument at fault, before any member is solved; the inputs stay as they were.
"""

import numpy as np
import pytest
from _oracles import expect_error, expect_truth, run_truth, unchanged

import hyperspy_chemomech as hcm
from hyperspy_chemomech import simulate


@pytest.fixture(scope="module")
def members():
    c = simulate.particle_collection(n_members=3, seed=0, shape=(40, 64), n_dislocations=1,
                                     show_progressbar=False)
    return c


def _learn(strains, comps, **kw):
    return hcm.learn_eigenstrain_collection(strains, comps, show_progressbar=False,
                                            **dict({"degree": 1}, **kw))


def _bad_member(c, case):
    """The collection's lists with one member made bad as ``case`` says."""
    s, x = [m.deepcopy() for m in c.strains], [m.deepcopy() for m in c.compositions]
    if case == "composition_grid":
        x[1] = x[1].isig[:-2, :]
    elif case == "composition_pixel":
        x[1].axes_manager[0].scale *= 1.5
        x[1].axes_manager[1].scale *= 1.5
    elif case == "strain_type":
        s[2] = s[2].data
    elif case == "composition_type":
        x[0] = x[0].data
    elif case == "strain_complex":
        s[1] = s[1].deepcopy()
        s[1].data = s[1].data.astype(complex)
    elif case == "series_member":   # a whole series given as one member of a list
        s[0] = simulate.operando_series(n_frames=2, shape=(40, 64), n_dislocations=0,
                                        show_progressbar=False).strain
    return s, x


BAD = [
    # (case, kwargs, exception, names in the message)
    ("lengths", {}, ValueError, ("composition",)),
    ("empty", {}, ValueError, ("empty",)),
    ("strains_array", {}, TypeError, ("strains",)),
    ("comps_not_list", {}, TypeError, ("composition",)),
    ("composition_grid", {}, ValueError, ("member 1", "grid")),
    ("composition_pixel", {}, ValueError, ("member 1", "pixel size")),
    ("strain_type", {}, TypeError, ("member 2", "StrainField")),
    ("composition_type", {}, TypeError, ("member 0", "CompositionMap")),
    ("strain_complex", {}, (ValueError, TypeError), ("member 1", "complex")),
    ("series_member", {}, ValueError, ("member 0",)),
    ("ok", {"material": ["LixFePO4"] * 2}, ValueError, ("material",)),
    ("ok", {"material": ["LixFePO4", "unobtainium", "LixFePO4"]}, ValueError,
     ("member 1", "unobtainium")),
    ("ok", {"material": ("LiFePO4", "FePO4")}, ValueError, ("lithiated",)),
    ("ok", {"crystal_angles": [0.0, 0.1]}, ValueError, ("crystal_angles",)),
    ("ok", {"crystal_angles": np.nan}, ValueError, ("crystal_angle",)),
    ("ok", {"masks": [None]}, ValueError, ("mask",)),
    ("ok", {"bogus_option": 1}, TypeError, ("bogus_option",)),
    ("ok", {"degree": 0}, ValueError, ("degree",)),
    ("ok", {"level": 1.5}, ValueError, ("level",)),
    ("ok", {"level": 0.0}, ValueError, ("level",)),
    ("ok", {"client": "nonsense"}, (ValueError, TypeError), ("client",)),
]


@pytest.mark.parametrize("case, kw, exc, names", BAD,
                         ids=[f"{c}-{sorted(k)}" for c, k, _, _ in BAD])
def test_learn_collection_bad(members, case, kw, exc, names):
    c = members
    s, x = list(c.strains), list(c.compositions)
    if case == "lengths":
        x = x[:2]
    elif case == "empty":
        s, x = [], []
    elif case == "strains_array":
        s = np.zeros((3, 4, 8, 8))
    elif case == "comps_not_list":
        x = x[0]
    elif case != "ok":
        s, x = _bad_member(c, case)
    with unchanged(*c.strains, *c.compositions):
        expect_error(_learn, s, x, exc=exc, names=names, **kw)


def test_learn_collection_series_mismatch():
    op = simulate.operando_series(n_frames=3, shape=(40, 64), n_dislocations=0,
                                  show_progressbar=False)
    with unchanged(op.strain, op.composition):
        expect_error(_learn, op.strain, op.composition.inav[:2], exc=ValueError,
                     names=("frames",))


def test_learn_collection_truth(members):
    """Three members of one Vegard law: shared slopes within 5 % of the truth, inputs kept."""
    c = members
    with unchanged(*c.strains, *c.compositions):
        law = run_truth(_learn, c.strains, c.compositions)
    slopes = np.asarray(law.vegard()["slopes"], float)[:2]
    truth = np.asarray(c.truth["slopes"], float)[:2]
    ok = np.all(np.abs(slopes / truth - 1) < 0.05) and len(law.member_laws) == 3
    expect_truth(bool(ok), f"shared slopes {slopes} against {truth}, "
                 f"{len(law.member_laws)} member laws")


GEN_BAD = [
    (simulate.particle_collection, {"n_members": 0}, ("n_members",)),
    (simulate.particle_collection, {"n_members": 3, "n_odd": 4}, ("n_odd",)),
    (simulate.particle_collection, {"n_members": 2, "noise": -1e-3}, ("noise",)),
    (simulate.particle_collection, {"n_members": 2, "odd_factor": np.nan}, ("odd_factor",)),
    (simulate.particle_collection, {"n_members": 2, "shape": (4, 4)}, ("shape",)),
    (simulate.operando_series, {"n_frames": 0}, ("n_frames",)),
    (simulate.operando_series, {"n_frames": 2, "noise": np.nan}, ("noise",)),
    (simulate.operando_series, {"n_frames": 2, "travel": (0.2, 1.5), "shape": (40, 64)},
     ("travel",)),
    (simulate.operando_series, {"n_frames": 2, "shape": (40,)}, ("shape",)),
]


@pytest.mark.parametrize("func, kw, names", GEN_BAD,
                         ids=[f"{f.__name__}-{sorted(k)}" for f, k, _ in GEN_BAD])
def test_generators_bad(func, kw, names):
    expect_error(func, exc=(ValueError, TypeError), names=names, show_progressbar=False, **kw)


def test_decompose_collection_lengths(members):
    c = members
    law = _learn(c.strains, c.compositions)
    expect_error(hcm.decompose_collection, c.strains, c.compositions[:2], law,
                 exc=ValueError, names=("composition",), show_progressbar=False)
    expect_error(hcm.decompose_collection, c.strains, c.compositions, "not a law",
                 exc=TypeError, names=("law",), show_progressbar=False)
    single = c.strains[0].learn_eigenstrain(c.compositions[0], degree=1, show_progressbar=False)
    expect_error(hcm.decompose_collection, c.strains[:1], c.compositions[:1], single,
                 exc=ValueError, names=("collection",), show_progressbar=False)
