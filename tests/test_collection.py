"""One law from many particles and from operando series (issue 17): the engine and its API.

Small members (40 x 64 px, 48 x 80 px) so the file runs in well under a minute;
the statistics over many collections and the speed are in benchmarks/collection.py.
"""

import warnings

import numpy as np
import pytest

import hyperspy_chemomech as hcm
from hyperspy_chemomech._metadata import record, set_image_axes
from hyperspy_chemomech.learning import learn_law, learn_law_collection
from hyperspy_chemomech.mechanics import resolve_stiffness
from hyperspy_chemomech.signals import CompositionMap, StrainField
from hyperspy_chemomech.simulate import make_particle, vegard_law

PIXEL = 5.0
Q = resolve_stiffness(("FePO4", "LiFePO4"), "stress")
TRUE = vegard_law().slopes
ODD = (3, 9, 14)


def _steeper(X):
    return 1.1 * vegard_law()(X)


_steeper.slopes = 1.1 * TRUE


def _particles(n, shape, seed, odd=()):
    """n particles, one Vegard law (members in ``odd`` 10 % steeper): strain noise 2e-3,
    X-ray 4x coarser (blurred, noise-free composition), one dislocation, random frames."""
    rng = np.random.default_rng(seed)
    return [make_particle(shape=shape, pixel_size=PIXEL, material="LixFePO4", noise=2e-3,
                          blur_factor=4, n_dislocations=1, seed=seed + k,
                          crystal_angle=float(rng.uniform(-0.6, 0.6)),
                          law=_steeper if k in odd else "vegard")
            for k in range(n)]


def _signals(parts, noise_free=False):
    strains = []
    for p in parts:
        s = StrainField.from_components(*(p.strain_noise_free if noise_free else p.strain),
                                        scale=PIXEL)
        strains.append(s)
    return strains, [p.composition_map() for p in parts]


def _quiet(func, *args, **kwargs):
    kwargs.setdefault("show_progressbar", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


@pytest.fixture(scope="module")
def twenty():
    parts = _particles(20, (40, 64), seed=0)
    S, C = _signals(parts)
    angles = [p.crystal_angle for p in parts]
    law = _quiet(hcm.learn_eigenstrain_collection, S, C, crystal_angles=angles)
    return parts, S, C, angles, law


# --------------------------------------------------------------------------- must show
def test_twenty_particles_pin_the_law_tighter(twenty):
    """Shared slopes within a third of one member's median error; 95 % intervals >= 3x narrower."""
    parts, S, C, angles, law = twenty
    shared = law.vegard()
    members = np.array([m.vegard()["slopes"] for m in law.member_laws])
    err_member = np.median(np.abs(members - TRUE), axis=0)
    err_shared = np.abs(shared["slopes"] - TRUE)
    width_member = np.median([np.diff(m.vegard()["ci95"], axis=1)[:, 0]
                              for m in law.member_laws], axis=0)
    width_shared = np.diff(shared["ci95"], axis=1)[:, 0]
    print(f"\nshared |err| {err_shared}, member median |err| {err_member}, "
          f"ratio {err_member / err_shared}; 95 % width member/shared {width_member / width_shared}")
    assert np.all(width_member >= 3 * width_shared)
    # the [100] slope (the largest misfit) meets the third; the [001] slope is limited by the
    # single fit's resolution-matching bias at these small sizes (see the test below)
    assert err_shared[0] <= err_member[0] / 3
    assert not law.homogeneity.rejected          # one law for all: no false alarm here
    coll = law.metadata.Chemomech.collection
    assert coll.n_members == 20 and coll.n_factorisations == 20
    # one resolution for all members (shared X-ray optics): at least the 4 px X-ray pixel's
    # variance-matched width (2 px), while the members' own estimates scatter
    assert coll.shared_resolution and coll.shared_resolution_sigma_px >= 2.0
    assert np.ptp(coll.member_sigma_px) > 0.3
    assert len(law.member_laws) == 20 and law.homogeneity.odd_members == []
    # each member's signal made once, on first access; indexing as a list's
    assert law.member_laws[-1] is law.member_laws[19]
    assert law.member_laws[18:][1] is law.member_laws[19]
    assert law.member_laws[3].metadata.General.title == "Eigenstrain law of member 3"
    with pytest.raises(IndexError):
        law.member_laws[20]


@pytest.mark.xfail(strict=True, reason=(
    "a limit of small members, not met: with one resolution for all members (2.0 px, the X-ray "
    "pixel's variance-matched width) and the commutator correction the shared [001] slope is "
    "off by 1.86e-4 against a member median of 3.6e-4 (ratio 0.52). On these 40 x 64 px "
    "members (10 x 16 X-ray pixels) the blur's commutator with the free body is not first "
    "order (noise-free, Gaussian-blurred composition: member [001] bias -1.07e-4 -> -0.57e-4 "
    "corrected) and the X-ray pixels add ~-1.6e-4 beyond a Gaussian (the strain passed "
    "through the X-ray map's own operator instead of the Gaussian: -1.81e-4). Members of "
    "~100 x 170 px meet the third: test_twenty_particles_pin_both_slopes, "
    "benchmarks/collection.py"))
def test_twenty_particles_001_slope_within_a_third(twenty):
    parts, S, C, angles, law = twenty
    members = np.array([m.vegard()["slopes"] for m in law.member_laws])
    err_member = np.median(np.abs(members - TRUE), axis=0)
    assert abs(law.vegard()["slopes"][1] - TRUE[1]) <= err_member[1] / 3


@pytest.fixture(scope="module")
def twenty_full():
    """20 members of ~100 x 170 px from the benchmark's generator (random outlines, patterns,
    states of charge, frames; 3 dislocations each), a seed the benchmark's figures do not use."""
    from hyperspy_chemomech.simulate import particle_collection

    col = particle_collection(n_members=20, seed=40, show_progressbar=False)
    return col, _quiet(hcm.learn_eigenstrain_collection, col.strains, col.compositions)


def test_twenty_particles_pin_both_slopes(twenty_full):
    """The must-show on members of the benchmark's size: both shared slopes within a third of
    one member's median error, 95 % intervals >= 3x narrower, the truth inside them.

    Seed 40 is the first tried. A single collection's shared error is one draw: on seeds
    41-48, 6 of 8 meet both thirds (44, 45: [001] at 0.38, 0.56 of the member median) and
    all 8 cover the truth; over the benchmark's 20 collections the median ratios are 0.10,
    0.14 (2026-12-02).
    """
    col, law = twenty_full
    truth = np.asarray(col.law.slopes)
    shared = law.vegard()
    members = np.array([m.vegard()["slopes"] for m in law.member_laws])
    err_member = np.median(np.abs(members - truth), axis=0)
    err_shared = np.abs(shared["slopes"] - truth)
    width_member = np.median([np.diff(m.vegard()["ci95"], axis=1)[:, 0]
                              for m in law.member_laws], axis=0)
    width_shared = np.diff(shared["ci95"], axis=1)[:, 0]
    print(f"\nshared |err| {err_shared}, member median |err| {err_member}, "
          f"ratio {err_shared / err_member}; 95 % width member/shared {width_member / width_shared}")
    assert np.all(err_shared <= err_member / 3)
    assert np.all(width_member >= 3 * width_shared)
    assert np.all((shared["ci95"][:, 0] <= truth) & (truth <= shared["ci95"][:, 1]))
    assert not law.homogeneity.rejected


def test_three_steeper_members_are_named():
    parts = _particles(20, (48, 80), seed=100, odd=ODD)
    S, C = _signals(parts)
    law = _quiet(hcm.learn_eigenstrain_collection, S, C,
                 crystal_angles=[p.crystal_angle for p in parts])
    h = law.homogeneity
    print(f"\n{h}\nmember p-values (Holm) {np.round(h.member_adjusted_p, 4)}")
    assert h.rejected and h.p_value < 0.05
    assert h.odd_members == list(ODD)
    assert set(h.odd_p_values) == set(ODD)
    assert "rejected" in repr(h) and "3 (p =" in repr(h)


def _series(n_frames=30, shape=(40, 64), drift=True, blur=1):
    """One particle (fixed outline), a new composition each frame, integer drift up to 2 px.

    ``blur=1``: the composition at the strain's resolution (e.g. ptychography), where the
    single fit has no resolution-matching bias that every frame of one body would share.
    """
    rng = np.random.default_rng(7)
    mask = make_particle(shape=shape, pixel_size=PIXEL, fill=0.75, seed=0).mask
    frames = [make_particle(shape=shape, pixel_size=PIXEL, material="LixFePO4", noise=2e-3,
                            blur_factor=blur, seed=300 + t, mask=mask, crystal_angle=0.2)
              for t in range(n_frames)]
    shifts = np.zeros((n_frames, 2), int)
    if drift:
        shifts[1:] = rng.integers(-2, 3, (n_frames - 1, 2))
    from hyperspy_chemomech.learning._collection import shift_map

    strain = np.stack([shift_map(p.strain, s) for p, s in zip(frames, shifts)])
    X = np.stack([shift_map(p.X_observed, s) for p, s in zip(frames, shifts)])
    S = StrainField(strain)
    set_image_axes(S, scale=PIXEL, units="nm")
    C = CompositionMap(X)
    set_image_axes(C, scale=PIXEL, units="nm")
    if blur > 1:
        record(C, "registration", source_pixel_size_nm=blur * PIXEL)
    return frames, shifts, S, C


def test_operando_series_one_factorisation():
    frames, shifts, S, C = _series()
    law = _quiet(hcm.learn_eigenstrain_collection, S, C, crystal_angles=0.2, drift="register")
    coll = law.metadata.Chemomech.collection
    assert coll.n_factorisations == 1 and coll.n_members == 30
    # C(X): the other frames are solved by CG preconditioned by the first frame's factor
    assert coll.member_cg_iterations[0] == 0 and np.all(coll.member_cg_iterations[1:] > 0)
    np.testing.assert_array_equal(coll.member_shift_px, -shifts)   # registered back
    frame_err = np.median(np.abs([m.vegard()["slopes"] - TRUE for m in law.member_laws]), axis=0)
    err = np.abs(law.vegard()["slopes"] - TRUE)
    print(f"\noperando: shared |err| {err}, frame median |err| {frame_err}, "
          f"timings {dict(coll.timings_s.as_dictionary())}")
    assert np.all(err <= frame_err / 3)
    parts = hcm.decompose_collection(S.inav[:, :3], C.inav[:3], _first_members(law, 3))
    assert len(parts) == 3
    for t, d in enumerate(parts):   # each frame with its own reference under the shared law
        np.testing.assert_allclose(d.reference, law._collection_members[t]["reference"])
    # the shared law on one frame by itself: its reference is fitted there (not a member's)
    one = S.inav[:, 0].decompose(C.inav[0], law)
    assert np.all(np.isfinite(one.reference))


def _first_members(law, n):
    """The law restricted to its first n members' records (for a short decomposition)."""
    view = law.deepcopy()
    view._collection_members = law._collection_members[:n]
    return view


def test_collection_of_one_is_the_single_fit():
    p = _particles(1, (40, 64), seed=5)[0]
    kw = dict(degree=1, crystal_angle=p.crystal_angle, source_pixel_size=4 * PIXEL)
    single = _quiet(learn_law, p.strain, p.X_observed, PIXEL, Q, show_progressbar=False, **kw)
    # without the commutator correction (learn_law has none) the engine is the single fit
    coll = _quiet(learn_law_collection, [p.strain], [p.X_observed], PIXEL, [Q], degree=1,
                  crystal_angles=p.crystal_angle, source_pixel_size=4 * PIXEL, commutator=False)
    for f in (coll.law, coll.member_laws[0]):
        np.testing.assert_allclose(f.coefficients, single.coefficients, rtol=0, atol=1e-12)
        np.testing.assert_allclose(f.covariance, single.covariance, rtol=1e-9, atol=1e-16)
        np.testing.assert_allclose(f.vegard["ci95"], single.vegard["ci95"], rtol=1e-9)
    np.testing.assert_allclose(coll.member_laws[0].reference, single.reference, atol=1e-12)


def test_commutator_correction_removes_the_members_misfit():
    """Noise-free members, composition blurred by exactly the model's Gaussian (2 px, given):
    what is left of each member's law error is the blur's commutator with the finite body
    (largest for a core-shell pattern); the first-order correction takes most of it away."""
    from hyperspy_chemomech.fields import FWHM_PER_SIGMA, masked_gaussian

    parts = [make_particle(shape=(60, 100), pixel_size=PIXEL, material="LixFePO4", seed=k,
                           crystal_angle=0.3 * k, composition=c)
             for k, c in enumerate(("two_phase", "stripes", "core_shell"))]
    X = [np.where(p.mask, masked_gaussian(p.X_true, p.mask, 2.0), np.nan) for p in parts]
    S = [np.where(p.mask, p.strain_clean + p.reference[:, None, None], np.nan) for p in parts]
    err = {}
    for on in (False, True):
        f = _quiet(learn_law_collection, S, X, PIXEL, [Q] * 3, degree=1, dislocations="ignore",
                   crystal_angles=[p.crystal_angle for p in parts], commutator=on,
                   composition_resolution=FWHM_PER_SIGMA * 2.0 * PIXEL)
        err[on] = np.abs([m.vegard["slopes"] - TRUE for m in f.member_laws])
    print(f"\nmembers' |error| (e-4) without {np.round(1e4 * err[False], 2).tolist()}, "
          f"with {np.round(1e4 * err[True], 2).tolist()}")
    assert err[False].max() > 1.5e-4          # the misfit is there without the correction
    assert err[True].max() <= err[False].max() / 3


def test_commutator_offset_is_linear_and_vanishes_for_a_uniform_law():
    """K[c] = B S[phi_c] - S[B phi_c]: linear in the law's coefficients (so one pilot solve
    stands for every column), zero where the blur and the body commute (a uniform
    eigenstrain in a homogeneous body: stress-free), not zero for a pattern."""
    from hyperspy_chemomech.learning import LawBasis
    from hyperspy_chemomech.learning._collection import commutator_offset
    from hyperspy_chemomech.learning._design import eigenstrain_fields, forward_responses
    from hyperspy_chemomech.mechanics import ParticleElasticity

    p = make_particle(shape=(40, 64), pixel_size=PIXEL, material="LixFePO4", seed=3,
                      crystal_angle=0.3)
    mask = p.mask
    solver = ParticleElasticity(mask, pixel_size=PIXEL, stiffness=Q[0], crystal_angle=0.3)
    basis = LawBasis("legendre", 3)
    rng = np.random.default_rng(0)
    c1, c2 = rng.normal(size=6), rng.normal(size=6)
    for X, patterned in ((np.where(mask, 0.4, np.nan), False), (p.X_observed, True)):
        eig = eigenstrain_fields(basis, np.where(mask, X, np.nan), mask, 2, 0.3)
        R = forward_responses(solver, eig, False)
        K1, K2, K12 = (commutator_offset(solver, eig, R, c, mask, 2.0)
                       for c in (c1, c2, 2.0 * c1 - 3.0 * c2))
        scale = np.abs(np.tensordot(c1, R, axes=1)[:, mask]).max()
        np.testing.assert_allclose(K12, 2.0 * K1 - 3.0 * K2, rtol=0, atol=1e-9 * scale)
        assert np.all(K1[:, ~mask] == 0)
        if patterned:
            assert np.abs(K1[:, mask]).max() > 1e-3 * scale
        else:
            assert np.abs(K1[:, mask]).max() < 1e-8 * scale


def test_lazy_members_give_the_same_law(twenty):
    parts, S, C, angles, law = twenty
    n = 3
    eager = _quiet(hcm.learn_eigenstrain_collection, S[:n], C[:n], crystal_angles=angles[:n],
                   degree=1)
    lazy = _quiet(hcm.learn_eigenstrain_collection, [s.as_lazy() for s in S[:n]],
                  [c.as_lazy() for c in C[:n]], crystal_angles=angles[:n], degree=1)
    np.testing.assert_allclose(lazy.vegard()["slopes"], eager.vegard()["slopes"], atol=1e-14)
    # read here one member at a time, computed in worker processes
    procs = _quiet(hcm.learn_eigenstrain_collection, [s.as_lazy() for s in S[:n]],
                   [c.as_lazy() for c in C[:n]], crystal_angles=angles[:n], degree=1,
                   n_jobs=2, backend="processes")
    np.testing.assert_allclose(procs.vegard()["slopes"], eager.vegard()["slopes"], atol=1e-14)
    assert not S[0]._lazy   # the user's signals are untouched


def test_same_result_on_a_local_cluster():
    distributed = pytest.importorskip("distributed")
    parts = _particles(3, (40, 64), seed=50)
    S, C = _signals(parts)
    angles = [p.crystal_angle for p in parts]
    here = _quiet(hcm.learn_eigenstrain_collection, S, C, crystal_angles=angles)
    # two single-threaded workers (threads: a short test; what travels is checked below)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        there = _quiet(hcm.learn_eigenstrain_collection, S, C, crystal_angles=angles,
                       client="auto")   # the active client
    diff = _max_difference(here, there)
    print(f"\ncluster vs in-process: max difference {diff:.3g}")
    assert diff <= 1e-10
    assert "distributed (2 workers)" in there.metadata.Chemomech.collection.executed
    assert "in-process" in here.metadata.Chemomech.collection.executed


def _max_difference(a, b):
    """Largest difference between two collection results: law, covariance, members, p-values."""
    return max(np.abs(a.data - b.data).max(),
               np.abs(a.metadata.Chemomech.law.covariance
                      - b.metadata.Chemomech.law.covariance).max(),
               max(np.abs(x.data - y.data).max() for x, y in zip(a.member_laws, b.member_laws)),
               np.nanmax(np.abs(a.homogeneity.member_p_values - b.homogeneity.member_p_values)))


def test_worker_processes_give_the_threads_result():
    """backend="processes" (joblib's loky pool) gives what threads give, and says so."""
    parts = _particles(4, (40, 64), seed=80)
    S, C = _signals(parts)
    angles = [p.crystal_angle for p in parts]
    threads = _quiet(hcm.learn_eigenstrain_collection, S, C, crystal_angles=angles, n_jobs=2,
                     backend="threads")
    procs = _quiet(hcm.learn_eigenstrain_collection, S, C, crystal_angles=angles, n_jobs=2,
                   backend="processes")
    diff = _max_difference(threads, procs)
    print(f"\nprocesses vs threads: max difference {diff:.3g}")
    assert diff <= 1e-10
    assert "(2 processes)" in procs.metadata.Chemomech.collection.executed
    assert "(2 threads)" in threads.metadata.Chemomech.collection.executed


def test_worker_process_warnings_are_raised_here_naming_the_member():
    parts = _particles(2, (40, 64), seed=70)
    S, C = _signals(parts)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hcm.learn_eigenstrain_collection(S, C, crystal_angles=[p.crystal_angle for p in parts],
                                         boundary="dirichlet", degree=1, n_jobs=2,
                                         backend="processes", show_progressbar=False)
    held = sorted(str(w.message).split(":")[0] for w in caught
                  if "boundary='dirichlet'" in str(w.message))
    assert held == ["member 0", "member 1"]


def test_backend_auto_and_bad_backend():
    from hyperspy_chemomech.learning._collection import PROCESS_MIN_MEMBERS_PER_WORKER, _backend

    n = PROCESS_MIN_MEMBERS_PER_WORKER
    assert _backend("auto", 1, 100) == "serial"
    assert _backend("auto", 2, 2 * n) == "processes"
    assert _backend("auto", 2, 2 * n - 1) == "threads"
    assert _backend("threads", 2, 100) == "threads"
    assert _backend("processes", 2, 2) == "processes"
    parts = _particles(2, (40, 64), seed=70)
    S, C = _signals(parts)
    with pytest.raises(ValueError, match="backend must be one of"):
        hcm.learn_eigenstrain_collection(S, C, backend="process", show_progressbar=False)


def test_a_member_task_travels_as_plain_arrays():
    """What a worker process receives and sends back pickles; what comes back is small."""
    import pickle

    from hyperspy_chemomech.learning._collection import LearnOptions, _member_task

    p = _particles(1, (40, 64), seed=60)[0]
    item = dict(index=0, strain=p.strain, X=p.X_observed, pixel_size=PIXEL, stiffness=Q,
                crystal_angle=p.crystal_angle, mask=None, variance=None,
                options=LearnOptions())
    sent = pickle.dumps(([item], LearnOptions(), False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, seconds = _member_task(*pickle.loads(sent))
    back = pickle.dumps((out, seconds))
    print(f"\nsent {len(sent) / 1e3:.0f} kB, back {len(back) / 1e3:.0f} kB")
    assert len(back) < p.strain.nbytes / 2       # the Gram blocks: less than half a strain map
    ((index, member),), _ = pickle.loads(back)
    assert index == 0 and member.grams.H.shape[0] == member.n_blocks


def test_odd_members_do_not_drag_the_reference():
    """3 of 8 members 10 % steeper: the step-down test refits the others' law without the
    odd ones found, so the good members are not named with them."""
    parts = _particles(8, (64, 100), seed=200, odd=(1, 4, 6))
    S, C = _signals(parts)
    law = _quiet(hcm.learn_eigenstrain_collection, S, C,
                 crystal_angles=[p.crystal_angle for p in parts])
    print(f"\n{law.homogeneity}")
    assert law.homogeneity.odd_members == [1, 4, 6]


# --------------------------------------------------------------------------- bad input
def test_bad_inputs_name_the_member(twenty):
    parts, S, C, angles, law = twenty
    with pytest.raises(ValueError, match="3 strain fields but 2 composition"):
        hcm.learn_eigenstrain_collection(S[:3], C[:2])
    other = make_particle(shape=(30, 50), pixel_size=PIXEL, seed=1).composition_map()
    with pytest.raises(ValueError, match=r"member 1: composition grid \(30, 50\)"):
        hcm.learn_eigenstrain_collection(S[:3], [C[0], other, C[2]])
    with pytest.raises(ValueError, match="material has 2 entries for 3 members"):
        hcm.learn_eigenstrain_collection(S[:3], C[:3], material=["LixFePO4", "LiFePO4"])
    with pytest.raises(ValueError, match="member 1: material"):
        hcm.learn_eigenstrain_collection(S[:3], C[:3], material=["LixFePO4", "unobtainium",
                                                                   "LiFePO4"])
    with pytest.raises(TypeError, match="member 2: strain must be a StrainField"):
        hcm.learn_eigenstrain_collection(S[:2] + [np.zeros((4, 40, 64))], C[:3])
    with pytest.raises(ValueError, match="crystal_angles has 2 entries for 3 members"):
        hcm.learn_eigenstrain_collection(S[:3], C[:3], crystal_angles=[0.0, 0.1])
    with pytest.raises(ValueError, match="drift= is for an operando series"):
        hcm.learn_eigenstrain_collection(S[:3], C[:3], drift="register")
    with pytest.raises(TypeError, match="unknown option"):
        hcm.learn_eigenstrain_collection(S[:3], C[:3], composition_uncertainty="auto")
    with pytest.raises(ValueError, match="selection='cv'"):
        hcm.learn_eigenstrain_collection(S[:3], C[:3], selection="bic")
    with pytest.raises(ValueError, match="empty"):
        hcm.learn_eigenstrain_collection([], [])
    frames, shifts, Sser, Cser = _series(n_frames=3, drift=False)
    with pytest.raises(ValueError, match="3 frames, the composition series 2"):
        hcm.learn_eigenstrain_collection(Sser, Cser.inav[:2])
    with pytest.raises(ValueError, match="the law was learned on 20 members, 3 are given"):
        hcm.decompose_collection(S[:3], C[:3], law)


def test_homogeneity_holm():
    from hyperspy_chemomech.learning._collection import holm

    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, np.nan]), [0.03, 0.06, 0.06, np.nan])


def test_grams_interpolated_in_sigma():
    """The shared resolution's Grams: exact at the candidates, quadratic in between."""
    from hyperspy_chemomech.learning._collection import BlockGrams, _interpolate_grams

    sig = np.array([1.7, 2.0, 2.5, 3.0])
    def grams(s):      # quadratic in sigma: interpolation is exact, its derivative too
        q = 1.0 + 0.3 * s - 0.2 * s * s
        return BlockGrams(np.arange(2), q * np.ones((2, 3, 3)), q * np.ones((2, 3)),
                          q * np.ones(2), np.ones(2), 10)
    g, dv = _interpolate_grams([grams(s) for s in sig], sig, 2.2)
    np.testing.assert_allclose(g.H, grams(2.2).H, rtol=1e-12)
    np.testing.assert_allclose(dv, 2 * (0.3 - 0.4 * 2.2) * np.ones(3), rtol=1e-12)
    g, _ = _interpolate_grams([grams(s) for s in sig], sig, 3.0)
    np.testing.assert_allclose(g.v, grams(3.0).v, rtol=1e-12)


def test_file_backed_members_are_read_by_the_workers(tmp_path):
    """Lazy members from files: zspy recipes travel and the workers read them; hspy (h5py,
    which does not pickle) is read on the client; both give the eager law."""
    distributed = pytest.importorskip("distributed")
    import hyperspy.api as hs

    from hyperspy_chemomech.learning._collection import _pickles
    from hyperspy_chemomech.signals._collection import _DaskMember

    parts = _particles(2, (40, 64), seed=60)
    S, C = _signals(parts)
    angles = [p.crystal_angle for p in parts]
    here = _quiet(hcm.learn_eigenstrain_collection, S, C, crystal_angles=angles, degree=1)
    for ext in ("zspy", "hspy"):
        for i, (s, c) in enumerate(zip(S, C)):
            s.save(tmp_path / f"s{i}.{ext}")
            c.save(tmp_path / f"c{i}.{ext}")
        SL = [hs.load(tmp_path / f"s{i}.{ext}", lazy=True) for i in range(2)]
        CL = [hs.load(tmp_path / f"c{i}.{ext}", lazy=True) for i in range(2)]
        assert _pickles(_DaskMember(SL[0].data, "s")) == (ext == "zspy")
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            there = _quiet(hcm.learn_eigenstrain_collection, SL, CL, crystal_angles=angles,
                           degree=1, client=client)
        np.testing.assert_allclose(there.vegard()["slopes"], here.vegard()["slopes"],
                                   atol=1e-12, err_msg=ext)
        assert SL[0]._lazy   # the user's signals stay lazy


# ------------------------------------------------- the members' common model error (#17)
def _deviations(rng, M=40, tau=(2.0, 1.0), s_scale=1.0):
    """Deviations d_m ~ N(0, S_m + Tau) with members' own S_m of varied size."""
    q = 2
    s = s_scale * rng.uniform(0.5, 2.0, M)
    S = s[:, None, None] * np.eye(q)[None]
    Tau = np.diag(np.square(tau))
    d = np.stack([rng.multivariate_normal(np.zeros(q), Sm + Tau) for Sm in S])
    return d, S, Tau


def test_model_error_recovers_the_between_member_covariance():
    from hyperspy_chemomech.learning._collection_model_error import member_model_error

    rng = np.random.default_rng(3)
    est = []
    for _ in range(30):
        d, S, Tau = _deviations(rng)
        est.append(np.diag(member_model_error(d, S)[0]))
    # ML of a variance from 40 members: unbiased to within its sampling error
    np.testing.assert_allclose(np.mean(est, axis=0), np.diag(Tau), rtol=0.2)
    # no excess scatter: Tau near zero (and never negative)
    small = []
    for _ in range(30):
        d, S, _ = _deviations(rng, tau=(0.0, 0.0))
        T = member_model_error(d, S)[0]
        assert np.all(np.linalg.eigvalsh(T) >= -1e-12)
        small.append(np.trace(T))
    assert np.mean(small) < 0.15 * np.trace(Tau)


def test_robust_model_error_leaves_out_far_members():
    from hyperspy_chemomech.learning._collection_model_error import (
        EXCLUDE_P,
        member_model_error,
    )

    rng = np.random.default_rng(4)
    d, S, Tau = _deviations(rng, M=20, tau=(1.0, 1.0))
    odd = [2, 9, 15]
    d[odd] += np.array([25.0, -12.0])              # three members off another law
    plain = member_model_error(d, S)[0]
    robust, used, _ = member_model_error(d, S, exclude_p=EXCLUDE_P)
    assert not used[odd].any() and used.sum() >= 15
    assert np.trace(robust) < 0.2 * np.trace(plain)   # the odd ones would swamp Tau
    assert np.trace(robust) < 4 * np.trace(Tau)
