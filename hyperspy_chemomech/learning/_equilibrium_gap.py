"""The published equilibrium-gap fit (Deng et al., Nat. Mater. 21, 547 (2022)).

1. Integrate the measured displacement gradient (strain and rotation) to nodal
   displacements u_meas by least squares (B u = grad u at the pixel centres).
2. Take u_meas on the particle's boundary as a Dirichlet condition and minimise
   the interior force residual || K u_meas - f(theta) || over the interior
   nodes, where f(theta) = sum_k theta_k F_k is the nodal force of the
   eigenstrain basis fields. A uniform eigenstrain exerts no interior force, so
   the constant reference strain drops out.

Kept to reproduce the paper and as a cross-check: differentiating noisy data
twice (K acts like a second derivative) amplifies noise, and the composition's
blur biases it; the strain-gap fit is the default.
"""

import numpy as np

from ._bases import LawBasis
from ._fit import blocked_cv, one_standard_error_choice, robust_fit, spatial_blocks
from ._law import (
    LawFit,
    composition_summary,
    law_columns,
    linearity_test,
    vegard_map,
    vegard_stats,
)


def equilibrium_gap_fit(strain, X, mask, solver, eig, basis, n_comp, degrees, crystal_angle,
                        pixel_size, use_rotation=True, seed=0, n_folds=5):
    """Equilibrium-gap estimate of the law (see module docstring).

    Parameters
    ----------
    strain : (4, ny, nx) measured maps.
    X, mask : composition and body.
    solver : ParticleElasticity (free boundary; K and the force of eigenstrains are used).
    eig : (n_comp * d_max, 3, ny, nx) image-frame eigenstrain basis fields.
    basis : LawBasis at d_max (nested columns c * d_max + k).
    n_comp : int
    degrees : list of int
        Candidate degrees (one means fixed).

    Returns
    -------
    LawFit
    """
    d_max = basis.n
    u = solver.integrate_gradient(strain[:3], strain[3] if use_rotation else None)
    interior = solver.interior_dofs
    if interior.size < 10 * eig.shape[0]:
        raise ValueError(f"only {interior.size} interior dofs: the particle is too small "
                         "for the equilibrium-gap fit")
    r_meas = (solver.K @ u)[interior]
    F = solver.force(eig)[:, interior]          # (n_resp, n_int)
    A = F.T
    y = r_meas
    comp = (interior % 2).astype(int)           # force x / force y rows
    # spatial blocks of nodes, as for pixels
    nodes = interior // 2
    node_yx = np.argwhere(solver.node_mask)[nodes]
    nmask = np.zeros(solver.node_mask.shape, bool)
    nmask[node_yx[:, 0], node_yx[:, 1]] = True
    block = int(max(8, round(np.sqrt(mask.sum()) / 6)))
    labels = spatial_blocks(nmask, block)
    group = labels[node_yx[:, 0], node_yx[:, 1]]

    def columns(d):
        return law_columns(n_comp, d_max, d)

    sel = {"criterion": "none (degree given)", "block_size_px": block,
           "n_blocks": int(group.max() + 1)}
    if len(degrees) > 1:
        f0 = robust_fit(A, y, comp, group, n_components=2)
        err = blocked_cv(A, y, f0.weights, group, [columns(d) for d in degrees],
                         n_folds=n_folds, seed=seed)
        d_sel = degrees[one_standard_error_choice(err)]
        sel.update(criterion="cv", degrees=np.asarray(degrees), errors=err.mean(axis=1))
    else:
        d_sel = degrees[0]

    def fit_degree(d):
        cols = columns(d)
        return cols, robust_fit(A[:, cols], y, comp, group, n_components=2)

    def fit_linear():
        return robust_fit(A @ vegard_map(basis, n_comp, A.shape[1]), y, comp, group,
                          n_components=2)

    cols, fit = fit_degree(d_sel)
    coef = fit.coef.reshape(n_comp, d_sel)
    # forward prediction of the learned law, for the reference strain and residuals
    sol = solver.solve(np.einsum("k,kcyx->cyx", fit.coef, eig[cols]), show_progressbar=False)
    pred = np.concatenate([sol.strain, sol.rotation[None]])
    ref = np.array([np.nanmedian((strain[c] - pred[c])[mask]) for c in range(4)])
    pred = np.where(mask, pred + ref[:, None, None], np.nan)
    basis_kind = basis.kind
    return LawFit(
        basis=LawBasis(basis_kind, d_sel), coefficients=coef, covariance=fit.cov,
        covariance_white=fit.cov_white, dof=int(fit.n_clusters - 1), reference=ref,
        n_components=n_comp, sigma_px=0.0, sigma_sd_px=0.0,
        sigma_source="none (equilibrium gap)",
        selection=sel, noise=fit.scale, vegard=vegard_stats(fit_linear, n_comp),
        linearity=linearity_test(fit_degree, n_comp, d_sel, basis_kind) if d_max >= 2
        else {"tested": False, "reason": "no nonlinear degree"},
        method="equilibrium_gap", condition=fit.condition, prediction=pred,
        residual=np.where(mask, strain - pred, np.nan),
        **composition_summary(X, mask),
        settings=dict(crystal_angle=float(crystal_angle), pixel_size_nm=float(pixel_size),
                      boundary="dirichlet", use_rotation=bool(use_rotation),
                      shear=n_comp == 3, basis=basis_kind, selection="cv"),
    )
