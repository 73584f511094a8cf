"""Mechanics engine: ParticleElasticity against analytic solutions and invariances."""

import numpy as np
import pytest

from hyperspy_chemomech.mechanics import (
    ParticleElasticity, get_material, isotropic_stiffness, plane_eigenstrain, plane_stiffness,
    rotate_plane_stiffness, rotate_strain)

RNG = np.random.default_rng(0)
Q_LFP = plane_stiffness(get_material("LiFePO4").stiffness)
Q_FP = plane_stiffness(get_material("FePO4").stiffness)


def disc(n, radius, centre=None):
    c = (n - 1) / 2 if centre is None else centre
    yy, xx = np.mgrid[:n, :n]
    return np.hypot(yy - c, xx - c) < radius


def blob(shape=(30, 38)):
    """An irregular, non-convex particle (with a notch)."""
    ny, nx = shape
    yy, xx = np.mgrid[:ny, :nx]
    m = ((yy - ny / 2) / (0.42 * ny)) ** 2 + ((xx - nx / 2) / (0.45 * nx)) ** 2 < 1
    m &= ~((xx > nx / 2) & (np.abs(yy - ny / 2) < 3))  # notch
    return m


def general_q():
    """A fully anisotropic (non-orthotropic) positive-definite plane stiffness."""
    a = RNG.normal(size=(3, 3))
    return a @ a.T * 30 + np.diag([150.0, 120.0, 40.0])


# ----------------------------------------------------------------- free body, uniform
@pytest.mark.parametrize("case", ["lfp_rect", "orthotropic_blob", "general_angle_map",
                                  "composition", "pixel_aniso"])
def test_uniform_eigenstrain_free_body_is_stress_free(case):
    mask, kw = np.ones((12, 17), bool), {}
    if case == "lfp_rect":
        kw = dict(stiffness=Q_LFP, crystal_angle=0.0)
    elif case == "orthotropic_blob":
        mask, kw = blob(), dict(stiffness=Q_FP, crystal_angle=0.7)
    elif case == "general_angle_map":
        mask = blob((26, 21))
        kw = dict(stiffness=general_q(), crystal_angle=RNG.uniform(-3, 3, mask.shape))
    elif case == "composition":
        mask = blob()
        kw = dict(stiffness=(Q_FP, Q_LFP), composition=RNG.uniform(0, 1, mask.shape),
                  crystal_angle=-1.1)
    elif case == "pixel_aniso":
        mask, kw = disc(25, 11), dict(stiffness=general_q(), pixel_size=(0.7, 2.3),
                                      crystal_angle=2.0)
    solver = ParticleElasticity(mask, **kw)
    eps0 = np.empty((3,) + mask.shape)
    eps0[:] = np.array([0.012, -0.02, 0.007])[:, None, None]
    eps0[:, ~mask] = np.nan  # outside the mask: ignored
    sol = solver.solve(eps0, show_progressbar=False)
    assert sol.strain.shape == (3,) + mask.shape
    np.testing.assert_allclose(sol.strain[:, mask], eps0[:, mask], rtol=0, atol=1e-12)
    assert np.nanmax(np.abs(sol.stress)) <= 1e-10
    assert np.nanmax(np.abs(sol.elastic_strain)) <= 1e-12
    assert np.nanmax(np.abs(sol.rotation)) <= 1e-12
    assert np.all(np.isnan(sol.strain[:, ~mask])) and np.all(np.isnan(sol.stress[:, ~mask]))


# ----------------------------------------------------------------- element quality
def test_element_has_only_rigid_zero_energy_modes():
    k = ParticleElasticity(np.ones((1, 1), bool), stiffness=Q_LFP).K.toarray()
    ev = np.linalg.eigvalsh(k)
    assert np.sum(ev < 1e-9 * ev.max()) == 3  # 2x2 Gauss: no hourglass mode


def test_checkerboard_hourglass_mode_has_energy():
    n = 8
    solver = ParticleElasticity(np.ones((n, n), bool), stiffness=Q_LFP)
    jj, ii = np.meshgrid(np.arange(n + 1), np.arange(n + 1))
    u = np.zeros((n + 1, n + 1, 2))
    u[..., 0] = (-1.0) ** (ii + jj)  # the hourglass pattern of one-point integration
    vec = u[solver.node_mask].ravel()
    # the centroid sees no strain from it, the stiffness does see it
    assert np.abs(solver.B[: 3 * solver.n_elem] @ vec).max() < 1e-12
    energy = vec @ (solver.K @ vec) / 2
    assert energy > 1e-2 * Q_LFP[2, 2] * n * n


def test_patch_test_linear_displacement_dirichlet():
    # Any linear boundary displacement on an irregular mask must give the exact uniform
    # strain and rotation everywhere (anisotropic stiffness, rectangular pixels).
    mask = blob((23, 29))
    dy, dx = 0.8, 1.7
    solver = ParticleElasticity(mask, pixel_size=(dy, dx), stiffness=general_q(),
                                crystal_angle=0.4, boundary="dirichlet")
    grad = np.array([[0.011, -0.004], [0.009, -0.017]])  # du_i/dx_j, (x, y)
    yn, xn = np.mgrid[: mask.shape[0] + 1, : mask.shape[1] + 1]
    xn, yn = xn * dx, yn * dy
    ub = np.stack([grad[0, 0] * xn + grad[0, 1] * yn + 0.3,
                   grad[1, 0] * xn + grad[1, 1] * yn - 0.2])
    sol = solver.solve(np.zeros((3,) + mask.shape), boundary_displacement=ub,
                       show_progressbar=False)
    e12 = (grad[0, 1] + grad[1, 0]) / 2
    theta = (grad[1, 0] - grad[0, 1]) / 2
    np.testing.assert_allclose(sol.strain[0][mask], grad[0, 0], atol=1e-13)
    np.testing.assert_allclose(sol.strain[1][mask], grad[1, 1], atol=1e-13)
    np.testing.assert_allclose(sol.strain[2][mask], e12, atol=1e-13)
    np.testing.assert_allclose(sol.rotation[mask], theta, atol=1e-13)
    np.testing.assert_allclose(sol.displacement[:, solver.node_mask], ub[:, solver.node_mask],
                               atol=1e-12)
    assert solver.interior_dofs.size > 0


def test_free_body_result_independent_of_pins():
    # the pinned solve, gauge-fixed, equals the minimum-norm solution of the singular
    # free-body system, gauge-fixed the same way
    mask = blob((14, 16))
    solver = ParticleElasticity(mask, stiffness=general_q(), crystal_angle=0.3)
    eps0 = RNG.normal(scale=0.01, size=(2, 3) + mask.shape)
    sol = solver.solve(eps0, show_progressbar=False)
    f = solver.force(eps0)
    u_pinv = np.linalg.lstsq(solver.K.toarray(), f.T, rcond=1e-12)[0].T
    u_ref = solver._remove_rigid(u_pinv)
    np.testing.assert_allclose(sol.dofs, u_ref, atol=1e-10 * np.abs(u_ref).max())
    # the gauge: zero mean rotation and zero mean pixel-centre displacement
    assert np.abs(np.nanmean(sol.rotation, axis=(1, 2))).max() < 1e-14
    # equilibrium: K u = f
    np.testing.assert_allclose((solver.K @ sol.dofs.T).T, f, atol=1e-9 * np.abs(f).max())


# ----------------------------------------------------------------- Eshelby inclusion
def _lame_2d(young, nu, plane):
    lam, mu = young * nu / ((1 + nu) * (1 - 2 * nu)), young / (2 * (1 + nu))
    return (lam if plane == "strain" else 2 * lam * mu / (lam + 2 * mu)), mu


@pytest.mark.parametrize("plane", ["strain", "stress"])
@pytest.mark.parametrize("boundary", ["dirichlet", "free"])
def test_eshelby_circular_inclusion(plane, boundary):
    young, nu, es = 100.0, 0.3, 0.01
    a, big = 30, 90
    n = 2 * big + 2
    yy, xx = np.mgrid[:n, :n] + 0.5 - n / 2          # pixel centres from the grid centre
    r = np.hypot(xx, yy)
    mask, incl = r < big, r < a
    lam, mu = _lame_2d(young, nu, plane)
    k = lam + mu
    a_eff = np.sqrt(incl.sum() / np.pi)                # same area as the pixelated inclusion
    b_coef = k * es / (k + mu)                          # infinite matrix: u = b a^2 / r outside
    if plane == "strain":                               # Eshelby: eps* (1+nu) / (2 (1-nu)) for
        eff = plane_eigenstrain([es, es, es], isotropic_stiffness(young, nu), "strain")
        # a 3D dilatation: check the textbook formula through the plane-strain projection
        assert np.isclose(k * eff[0] / (k + mu), es * (1 + nu) / (2 * (1 - nu)))
        assert np.isclose(b_coef, es / (2 * (1 - nu)))
    else:
        assert np.isclose(b_coef, es * (1 + nu) / 2)
    solver = ParticleElasticity(mask, stiffness=plane_stiffness(isotropic_stiffness(young, nu),
                                                                plane=plane), boundary=boundary)
    eps0 = np.zeros((3, n, n))
    eps0[:2, incl] = es
    ub = None
    if boundary == "dirichlet":
        # exact infinite-matrix displacement on the outer boundary
        yn, xn = np.mgrid[: n + 1, : n + 1] - n / 2
        rn = np.maximum(np.hypot(xn, yn), 1e-9)
        ub = np.stack([xn, yn]) * (b_coef * a_eff ** 2 / rn ** 2)
        expected = b_coef
    else:
        # finite free disc of radius R: u = A r inside, u = B a^2 / r + C r outside
        r_eff = np.sqrt(mask.sum() / np.pi)
        expected = b_coef * (1 + mu * a_eff ** 2 / (k * r_eff ** 2))
    sol = solver.solve(eps0, boundary_displacement=ub, show_progressbar=False)
    # the staircase interface perturbs the strain for a few pixels; the interior is uniform
    inner = r < a - 4
    for comp in (0, 1):
        rel = sol.strain[comp][inner] / expected - 1
        assert np.abs(rel).max() < 0.02, (comp, np.abs(rel).max())
        assert abs(rel.mean()) < 1e-3, (comp, rel.mean())
    assert np.abs(sol.strain[2][inner]).max() < 0.02 * expected
    # outside, far from the inclusion: the matrix strain decays as a^2 / r^2 (shear-like)
    ring = (r > 1.5 * a) & (r < 1.7 * a)
    err_rr = (sol.strain[0] * xx ** 2 + sol.strain[1] * yy ** 2
              + 2 * sol.strain[2] * xx * yy) / r ** 2
    if boundary == "dirichlet":
        rel = err_rr[ring] / (-b_coef * a_eff ** 2 / r[ring] ** 2) - 1
        assert np.abs(rel).max() < 0.03


# ----------------------------------------------------------------- convergence
def test_mesh_independence_smooth_solution():
    # smooth eigenstrain on a free square of side L, refined 3 times: the pixel-averaged
    # strain converges (each refinement at least halves the change)
    side = 40.0

    def run(n):
        h = side / n
        yc, xc = (np.mgrid[:n, :n] + 0.5) * h - side / 2
        g = np.exp(-(xc ** 2 + yc ** 2) / (2 * 8.0 ** 2))
        eps0 = np.stack([0.01 * g, -0.005 * g, 0.003 * g * xc / 8])
        solver = ParticleElasticity(np.ones((n, n), bool), pixel_size=h, stiffness=Q_LFP,
                                    crystal_angle=0.5)
        sol = solver.solve(eps0, show_progressbar=False)
        return np.concatenate([sol.strain, sol.rotation[None]])

    def coarsen(a, f):
        n = a.shape[-1] // f
        return a.reshape(a.shape[0], n, f, n, f).mean(axis=(2, 4))

    s1, s2, s4 = run(16), run(32), run(64)
    d1 = np.abs(coarsen(s2, 2) - s1).max()
    d2 = np.abs(coarsen(s4, 4) - coarsen(s2, 2)).max()
    assert d2 < 0.5 * d1
    assert d2 < 0.02 * np.abs(s4).max()


# ----------------------------------------------------------------- plane stress / strain
def test_plane_stress_equals_plane_strain_with_mapped_constants():
    young, nu = 80.0, 0.28
    q_stress = plane_stiffness(isotropic_stiffness(young, nu), plane="stress")
    # plane stress (E, nu) == plane strain (E (1 + 2 nu) / (1 + nu)^2, nu / (1 + nu))
    q_strain = plane_stiffness(isotropic_stiffness(young * (1 + 2 * nu) / (1 + nu) ** 2,
                                                   nu / (1 + nu)), plane="strain")
    np.testing.assert_allclose(q_stress, q_strain, rtol=1e-12)
    e_p = young / (1 - nu ** 2)
    np.testing.assert_allclose(q_stress, [[e_p, nu * e_p, 0], [nu * e_p, e_p, 0],
                                          [0, 0, young / (2 * (1 + nu))]], rtol=1e-12)
    mask = blob((20, 24))
    eps0 = RNG.normal(scale=0.01, size=(3,) + mask.shape)
    a = ParticleElasticity(mask, stiffness=q_stress).solve(eps0, show_progressbar=False)
    b = ParticleElasticity(mask, stiffness=q_strain).solve(eps0, show_progressbar=False)
    np.testing.assert_allclose(a.strain[:, mask], b.strain[:, mask], atol=1e-14)
    np.testing.assert_allclose(a.stress[:, mask], b.stress[:, mask], atol=1e-12)


# ----------------------------------------------------------------- frames
def _rot90_image(a):
    """Rotate maps by +90 deg (from +x toward +y): B[i', j'] = A[ny-1-j', i']."""
    return np.swapaxes(a[..., ::-1, :], -1, -2)


def test_rotating_crystal_and_image_together_leaves_physics_unchanged():
    mask = blob((18, 25))
    dy, dx = 0.9, 1.4
    comp = RNG.uniform(0, 1, mask.shape)
    eps0 = RNG.normal(scale=0.01, size=(3,) + mask.shape)
    a = ParticleElasticity(mask, pixel_size=(dy, dx), stiffness=(Q_FP, Q_LFP),
                           composition=comp, crystal_angle=0.3)
    sa = a.solve(eps0, show_progressbar=False)
    b = ParticleElasticity(_rot90_image(mask), pixel_size=(dx, dy), stiffness=(Q_FP, Q_LFP),
                           composition=_rot90_image(comp), crystal_angle=0.3 + np.pi / 2)
    sb = b.solve(rotate_strain(_rot90_image(eps0), np.pi / 2), show_progressbar=False)
    m = _rot90_image(mask)
    np.testing.assert_allclose(sb.strain[:, m],
                               rotate_strain(_rot90_image(sa.strain), np.pi / 2)[:, m],
                               atol=1e-13)
    np.testing.assert_allclose(sb.stress[:, m],
                               rotate_strain(_rot90_image(sa.stress), np.pi / 2)[:, m],
                               atol=1e-11)
    np.testing.assert_allclose(sb.rotation[m], _rot90_image(sa.rotation)[m], atol=1e-13)


def test_rotate_strain_roundtrip_and_invariants():
    e = RNG.normal(size=(3, 5, 4))
    ang = RNG.uniform(-3, 3, (5, 4))
    r = rotate_strain(e, ang)
    np.testing.assert_allclose(rotate_strain(r, ang, inverse=True), e, atol=1e-14)
    np.testing.assert_allclose(r[0] + r[1], e[0] + e[1], atol=1e-14)   # trace
    np.testing.assert_allclose(r[0] * r[1] - r[2] ** 2, e[0] * e[1] - e[2] ** 2, atol=1e-13)
    # against R eps R^T
    t = np.array([[e[0, 0, 0], e[2, 0, 0]], [e[2, 0, 0], e[1, 0, 0]]])
    c, s = np.cos(ang[0, 0]), np.sin(ang[0, 0])
    rot = np.array([[c, -s], [s, c]])
    tt = rot @ t @ rot.T
    np.testing.assert_allclose(r[:, 0, 0], [tt[0, 0], tt[1, 1], tt[0, 1]], atol=1e-14)
    np.testing.assert_allclose(rotate_strain(np.moveaxis(e, 0, -1), ang, axis=-1),
                               np.moveaxis(r, 0, -1), atol=1e-14)


def test_rotate_plane_stiffness_consistent_with_strain_rotation():
    q = general_q()
    ang = 0.83
    qi = rotate_plane_stiffness(q, ang)
    e_c = np.array([0.01, -0.02, 0.004])
    s_c = q @ (e_c * [1, 1, 2])
    e_i = rotate_strain(e_c, ang, axis=-1)
    np.testing.assert_allclose(qi @ (e_i * [1, 1, 2]), rotate_strain(s_c, ang, axis=-1),
                               rtol=1e-12)
    np.testing.assert_allclose(rotate_plane_stiffness(qi, -ang), q, rtol=1e-12)


# ----------------------------------------------------------------- composition-dependent C
def test_composition_path_equals_homogeneous_when_end_members_equal():
    mask = blob((20, 26))
    comp = RNG.uniform(0, 1, mask.shape)
    eps0 = RNG.normal(scale=0.01, size=(2, 3) + mask.shape)
    ref = ParticleElasticity(mask, stiffness=Q_LFP, crystal_angle=0.2)
    pair = ParticleElasticity(mask, stiffness=(Q_LFP, Q_LFP), composition=comp,
                              crystal_angle=0.2)
    call = ParticleElasticity(mask, stiffness=lambda x: np.broadcast_to(Q_LFP, x.shape + (3, 3)),
                              composition=comp, crystal_angle=0.2)
    s0 = ref.solve(eps0, show_progressbar=False)
    for other in (pair, call):
        s1 = other.solve(eps0, show_progressbar=False)
        np.testing.assert_allclose(s1.strain[:, :, mask], s0.strain[:, :, mask], atol=1e-14)
        np.testing.assert_allclose(s1.stress[:, :, mask], s0.stress[:, :, mask], atol=1e-12)


def test_composition_dependent_stiffness_changes_the_answer():
    # different end members: the pair path differs from either end member alone, and a
    # composition of all ones reproduces the second end member
    mask = blob((16, 20))
    eps0 = RNG.normal(scale=0.01, size=(3,) + mask.shape)
    ones = np.ones(mask.shape)
    s1 = ParticleElasticity(mask, stiffness=(Q_FP, Q_LFP), composition=ones).solve(
        eps0, show_progressbar=False)
    s_lfp = ParticleElasticity(mask, stiffness=Q_LFP).solve(eps0, show_progressbar=False)
    np.testing.assert_allclose(s1.strain[:, mask], s_lfp.strain[:, mask], atol=1e-14)
    sh = ParticleElasticity(mask, stiffness=(Q_FP, Q_LFP), composition=0.5 * ones).solve(
        eps0, show_progressbar=False)
    assert np.abs(sh.strain[:, mask] - s_lfp.strain[:, mask]).max() > 1e-5


# ----------------------------------------------------------------- many RHS, outputs
def test_many_rhs_equal_single_solves_and_factor_reused():
    mask = blob((15, 19))
    solver = ParticleElasticity(mask, stiffness=Q_LFP, crystal_angle=1.0)
    eps0 = RNG.normal(scale=0.01, size=(20, 3) + mask.shape)
    many = solver.solve(eps0, show_progressbar=False)
    factor = solver._factor
    for k in (0, 7, 19):
        one = solver.solve(eps0[k], show_progressbar=False)
        assert one.strain.shape == (3,) + mask.shape and one.rotation.shape == mask.shape
        np.testing.assert_allclose(one.strain, many.strain[k], atol=1e-15, equal_nan=True)
        np.testing.assert_allclose(one.displacement, many.displacement[k], atol=1e-14,
                                   equal_nan=True)
    assert solver._factor is factor
    assert many.displacement.shape == (20, 2, mask.shape[0] + 1, mask.shape[1] + 1)
    # B reproduces the fields from the nodal dofs; stress = Q (strain - eps0)
    g = (solver.B @ many.dofs[3]).reshape(4, -1)
    np.testing.assert_allclose(g[:3], many.strain[3][:, mask], atol=1e-15)
    np.testing.assert_allclose(g[3], many.rotation[3][mask], atol=1e-15)
    q = rotate_plane_stiffness(Q_LFP, 1.0)
    el = many.elastic_strain[3][:, mask]
    np.testing.assert_allclose(many.stress[3][:, mask], q @ (el * [[1], [1], [2]]), atol=1e-12)


def test_input_not_modified():
    mask = blob((12, 14))
    eps0 = RNG.normal(scale=0.01, size=(3,) + mask.shape)
    eps0[:, ~mask] = np.nan
    keep, mkeep = eps0.copy(), mask.copy()
    ParticleElasticity(mask, stiffness=Q_LFP).solve(eps0, show_progressbar=False).strain
    np.testing.assert_array_equal(eps0, keep)
    np.testing.assert_array_equal(mask, mkeep)


def test_pieces_each_and_largest():
    mask = np.zeros((12, 20), bool)
    mask[2:9, 1:8] = True
    mask[3:10, 11:18] = True
    eps0 = RNG.normal(scale=0.01, size=(3,) + mask.shape)
    with pytest.raises(ValueError, match="2 disconnected pieces"):
        ParticleElasticity(mask, stiffness=Q_LFP)
    both = ParticleElasticity(mask, stiffness=Q_LFP, pieces="each").solve(
        eps0, show_progressbar=False)
    for sl in (np.s_[:, :10], np.s_[:, 10:]):
        part = np.zeros_like(mask)
        part[sl] = mask[sl]
        alone = ParticleElasticity(part, stiffness=Q_LFP).solve(eps0, show_progressbar=False)
        np.testing.assert_allclose(both.strain[:, part], alone.strain[:, part], atol=1e-14)
        np.testing.assert_allclose(both.rotation[part], alone.rotation[part], atol=1e-14)
    big = ParticleElasticity(mask, stiffness=Q_LFP, pieces="largest")
    assert big.mask.sum() == 49 and big.n_pieces == 1


# ----------------------------------------------------------------- bad input
def test_bad_inputs_raise_clear_errors():
    mask = blob((10, 12))
    with pytest.raises(ValueError, match="no material"):
        ParticleElasticity(np.zeros((5, 5), bool), stiffness=Q_LFP)
    with pytest.raises(ValueError, match="2D"):
        ParticleElasticity(np.ones(5, bool), stiffness=Q_LFP)
    with pytest.raises(ValueError, match="positive definite"):
        ParticleElasticity(mask, stiffness=np.diag([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="symmetric"):
        ParticleElasticity(mask, stiffness=[[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match="pixel_size"):
        ParticleElasticity(mask, stiffness=Q_LFP, pixel_size=0.0)
    with pytest.raises(ValueError, match="pixel_size"):
        ParticleElasticity(mask, stiffness=Q_LFP, pixel_size=None)
    with pytest.raises(ValueError, match="stiffness is required"):
        ParticleElasticity(mask)
    with pytest.raises(ValueError, match="needs `composition`"):
        ParticleElasticity(mask, stiffness=(Q_FP, Q_LFP))
    comp = np.full(mask.shape, 0.5)
    comp[mask.nonzero()[0][0], mask.nonzero()[1][0]] = np.nan
    with pytest.raises(ValueError, match="composition has 1 non-finite"):
        ParticleElasticity(mask, stiffness=(Q_FP, Q_LFP), composition=comp)
    with pytest.raises(ValueError, match="not positive definite"):  # extrapolated too far
        ParticleElasticity(mask, stiffness=(Q_FP, Q_LFP), composition=np.full(mask.shape, 60.0))
    with pytest.raises(ValueError, match="boundary"):
        ParticleElasticity(mask, stiffness=Q_LFP, boundary="clamped")
    solver = ParticleElasticity(mask, stiffness=Q_LFP)
    with pytest.raises(ValueError, match=r"eigenstrain must have shape \(3, 10, 12\)"):
        solver.solve(np.zeros((3, 10, 11)))
    eps0 = np.zeros((3,) + mask.shape)
    eps0[1][mask.nonzero()[0][2], mask.nonzero()[1][2]] = np.nan
    with pytest.raises(ValueError, match="1 non-finite pixel"):
        solver.solve(eps0)
    with pytest.raises(ValueError, match="boundary='dirichlet'"):
        solver.solve(np.zeros((3,) + mask.shape), boundary_displacement=np.zeros((2, 11, 13)))
    hinge = np.zeros((6, 6), bool)
    hinge[1:3, 1:3] = hinge[3:5, 3:5] = True
    with pytest.raises(ValueError, match="corner"):
        ParticleElasticity(hinge, stiffness=Q_LFP, pieces="each")


# ----------------------------------------------------------------- equilibrium-gap support
def test_integrate_gradient_recovers_displacement_and_gap_vanishes():
    mask = blob((18, 22))
    comp = RNG.uniform(0, 1, mask.shape)
    eps0 = RNG.normal(scale=0.01, size=(3,) + mask.shape)
    eps0[:, 6:11, 7:12] = 0.0  # an eigenstrain-free patch (see the gap test below)
    kw = dict(pixel_size=(1.1, 0.9), stiffness=(Q_FP, Q_LFP), composition=comp,
              crystal_angle=0.4)
    free = ParticleElasticity(mask, **kw)
    sol = free.solve(eps0, show_progressbar=False)
    scale = np.abs(sol.dofs).max()
    u = free.integrate_gradient(sol.strain, sol.rotation)
    # exact data: the free solution itself (zero-mean gauge both); the 1e-8 energy
    # weight that fixes the hourglass modes costs ~1e-8 relative
    np.testing.assert_allclose(u, sol.dofs, atol=1e-6 * scale)
    # without the rotation: the same (rigid rotation: zero mean in both)
    np.testing.assert_allclose(free.integrate_gradient(sol.strain), sol.dofs, atol=1e-6 * scale)
    # equilibrium gap with the true eigenstrain is zero in the interior ...
    clamp = ParticleElasticity(mask, boundary="dirichlet", **kw)
    f = clamp.force(eps0)
    gap = (clamp.K @ u - f)[clamp.interior_dofs]
    assert np.abs(gap).max() < 1e-6 * np.abs(f).max()
    # ... and not with a wrong one
    gap_bad = (clamp.K @ u - clamp.force(1.1 * eps0))[clamp.interior_dofs]
    assert np.abs(gap_bad).max() > 1e-3 * np.abs(f).max()
    # the Dirichlet solve with the measured boundary displacement reproduces the field
    back = clamp.solve(eps0, boundary_displacement=clamp.dofs_to_grid(sol.dofs),
                       show_progressbar=False)
    np.testing.assert_allclose(back.strain[:, mask], sol.strain[:, mask], atol=1e-13)
    np.testing.assert_array_equal(free.grid_to_dofs(free.dofs_to_grid(u)), u)
    # missing data: a 3x3 hole, whose 4 inner nodes no data pixel touches, is filled with
    # the least-energy displacement, exact here since no eigenstrain acts there
    hole = sol.strain.copy()
    hole[:, 7:10, 8:11] = np.nan
    np.testing.assert_allclose(free.integrate_gradient(hole, sol.rotation), sol.dofs,
                               atol=1e-6 * scale)
    # ... but not where eigenstrain acts: the fill is then only approximate
    hole2 = sol.strain.copy()
    hole2[:, 2:5, 8:11] = np.nan
    err = np.abs(free.integrate_gradient(hole2, sol.rotation) - sol.dofs).max()
    assert 1e-5 * scale < err < 0.5 * scale


def test_mixed_precision_matches_double():
    mask = blob((40, 48))
    eps0 = RNG.normal(scale=0.01, size=(3, 3) + mask.shape)
    kw = dict(stiffness=(Q_FP, Q_LFP), composition=RNG.uniform(0, 1, mask.shape),
              crystal_angle=0.9)
    d = ParticleElasticity(mask, precision="double", **kw)
    m = ParticleElasticity(mask, precision="mixed", **kw)
    sd, sm = d.solve(eps0, show_progressbar=False), m.solve(eps0, show_progressbar=False)
    assert m._factor.precision == "mixed" and d._factor.precision == "double"
    assert 1 <= max(m._factor.iterations) <= 10
    scale = np.nanmax(np.abs(sd.strain))
    np.testing.assert_allclose(sm.strain[:, :, mask], sd.strain[:, :, mask], atol=1e-9 * scale)
    with pytest.raises(ValueError, match="precision"):
        ParticleElasticity(mask, precision="quad", **kw)
