"""Nuisance terms of the strain-gap fit: fitted (or removed) so they do not leak into the law.

- reference offsets: one constant per data component (the unknown reference
  lattice), columns of every design;
- dislocations: cores found in the measured maps, their long-range (Volterra)
  fields with a free Burgers vector;
- a held boundary (``boundary="dirichlet"``): the response to the data's own edge
  displacement, a known field removed from the data and the nuisance fields; with
  C(X), the trace that the (non-elastic) reference strain leaves through the edge
  displacement, fitted (:func:`reference_traces`).

The dislocation finder (decomposition) and the analytic dislocation field
(fields) come from other subpackages; they are imported here only.
"""

import numpy as np


def nuisance_fields(strain, mask, pixel_size, solver, options):
    """The data, ready for the design, and the nuisance fields fitted with the law.

    Parameters
    ----------
    strain : numpy.ndarray, shape (4, ny, nx)
        Measured maps (image frame; NaN = no data).
    mask : numpy.ndarray of bool
        The body.
    pixel_size : float or (float, float)
        nm.
    solver : ParticleElasticity
    options : LearnOptions

    Returns
    -------
    strain : numpy.ndarray, shape (4, ny, nx)
        Less the held boundary's response (a new array) for ``boundary="dirichlet"``.
    cores : numpy.ndarray, shape (n, 2)
        Dislocation cores (y, x), px.
    extra : numpy.ndarray, shape (2 n [+ 3], 4, ny, nx) or None
        Unit-Burgers-vector fields of the cores, then (held edge, C(X)) the traces
        of a unit reference strain per strain component (:func:`reference_traces`).
    """
    use_rotation = options.use_rotation
    cores, extra = np.zeros((0, 2)), None
    if options.nuisance.dislocations == "fit" and use_rotation:
        cores, extra = dislocation_fields(strain, mask, pixel_size)
    if options.body.boundary == "dirichlet":
        # the data's own boundary displacement drives a known part of the field:
        # remove it from the data and, alike, from the nuisance fields
        strain = remove_boundary_response(solver, strain, use_rotation)
        if extra is not None:
            extra = np.nan_to_num(remove_boundary_response(solver, extra, use_rotation))
        traces = reference_traces(solver, mask, use_rotation)
        if traces is not None:
            extra = traces if extra is None else np.concatenate([extra, traces])
    return strain, cores, extra


def split_nuisance(coef, comps, n_law, n_cores=None):
    """Reference offsets (4,) and Burgers vectors (n, 2) (nm) from a fit's coefficients.

    ``coef`` holds the law's ``n_law`` coefficients, one offset per fitted data
    component ``comps``, then two per dislocation core (``n_cores``; default: all
    that follow), then, for a held edge with C(X), one per reference trace: those
    are the reference strain (e11, e22, e12), added to the offsets.
    """
    reference = np.zeros(4)
    start = n_law + len(comps)
    reference[comps] = coef[n_law:start]
    n_b = (len(coef) - start) // 2 if n_cores is None else int(n_cores)
    burgers = coef[start:start + 2 * n_b].reshape(-1, 2)
    traces = coef[start + 2 * n_b:]
    if len(traces):
        reference[:len(traces)] += traces
    return reference, burgers


def reference_traces(solver, mask, use_rotation=True, tol=1e-3):
    """What a uniform reference strain leaves in the held-edge data.

    The reference strain (the 4D-STEM reference lattice) is no elastic strain, but
    it is in the measured edge displacement. Held at the edge, a body whose
    stiffness varies with X does not deform uniformly inside, so
    :func:`remove_boundary_response` leaves ``ref_j (e_j - S_D[0; u_b(e_j)])``, a
    non-uniform field that correlates with X (on LFP50_P2, reference e11 = -0.055,
    it moved the [100] slope from 0.046 to 0.073). These fields (one per strain
    component) enter as nuisance columns, so the fit takes that trace out. A rigid
    rotation leaves none; with homogeneous stiffness nor do strains (the patch
    test: below 2e-6 of the unit strain, against 0.15-0.3 for C(X) between FePO4
    and LiFePO4), and None is returned.

    Returns
    -------
    numpy.ndarray, shape (3, 4, ny, nx), or None
    """
    unit = np.zeros((3, 4) + mask.shape)
    for j in range(3):
        unit[j, j][mask] = 1.0
    mapped = np.nan_to_num(remove_boundary_response(solver, unit, use_rotation))
    return mapped if np.abs(mapped).max() > tol else None


def remove_boundary_response(solver, fields, use_rotation=True):
    """Fields minus the response of the body to their own boundary displacement.

    For a body held at its measured edge (``boundary="dirichlet"``: a field of view
    that cuts the particle, or a clamped particle) the strain is

        S_D[eps0; u_b] = S_D[eps0; 0] + S_D[0; u_b],

    with u_b the displacement on the boundary nodes. u_b comes from the data
    (the least-squares integral of its displacement gradient,
    :meth:`~hyperspy_chemomech.mechanics.ParticleElasticity.integrate_gradient`),
    so S_D[0; u_b] is a known field: subtracted, the rest is linear in the law with
    the homogeneous-Dirichlet responses S_D[phi_k; 0]. The map d -> d - S_D[0; u_b(d)]
    is linear; it is applied alike to the data and to every nuisance column.

    Parameters
    ----------
    solver : ParticleElasticity
        Factorised with ``boundary="dirichlet"``.
    fields : numpy.ndarray, shape (4, ny, nx) or (n, 4, ny, nx)
        e11, e22, e12, theta; NaN = no data.

    Returns
    -------
    numpy.ndarray, same shape; NaN where ``fields`` is NaN or outside the body.
    """
    f = np.asarray(fields, float)
    single = f.ndim == 3
    f = f[None] if single else f
    ub = solver.measured_edge_displacement(f, use_rotation=use_rotation)
    sol = solver.solve(np.zeros(f[:, :3].shape), boundary_displacement=ub,
                       show_progressbar=False)
    own = np.asarray(sol.strain_and_rotation).reshape(f.shape)
    out = np.where(solver.mask, f - own, np.nan)
    return out[0] if single else out


def dislocation_fields(strain, mask, pixel_size):
    """Cores found in the measured maps and their unit-Burgers-vector fields.

    The measured distortion is a displacement gradient, compatible everywhere but
    at dislocations, whatever the chemistry: its Nye content finds the cores
    without knowing the law.

    Returns
    -------
    cores : numpy.ndarray, shape (n, 2)
        Core positions (y, x) in pixels.
    fields : numpy.ndarray, shape (2 n, 4, ny, nx) or None
        For each core, the e11, e22, e12, theta maps of b = (1 nm, 0) and (0, 1 nm).
    """
    from ..decomposition import find_dislocations
    from ..fields import components_from_gradient, edge_dislocation_gradient

    dy, dx = np.broadcast_to(np.asarray(pixel_size, float), (2,))
    found = find_dislocations(np.where(mask, strain, np.nan), (dy, dx), mask=mask)
    if len(found) == 0:
        return np.zeros((0, 2)), None
    cores = np.column_stack([found["y"] / dy, found["x"] / dx])
    ny, nx = mask.shape
    # all cores at once, on the body's bounding box: (n, h, w) positions from each core
    ys, xs = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    box = (slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
    x = (np.arange(xs[0], xs[-1] + 1)[None, None, :] - cores[:, 1, None, None]) * dx
    y = (np.arange(ys[0], ys[-1] + 1)[None, :, None] - cores[:, 0, None, None]) * dy
    x, y = np.broadcast_arrays(x, y)
    fields = np.zeros((len(cores), 2, 4, ny, nx))
    for k, b in enumerate(((1.0, 0.0), (0.0, 1.0))):
        grad = edge_dislocation_gradient(x, y, b, core_radius=0.5 * min(dy, dx))
        fields[:, k, :, box[0], box[1]] = np.moveaxis(
            components_from_gradient(grad, axes=(0, 1)), 0, 1)
    fields[..., ~mask] = 0.0
    return cores, fields.reshape((-1, 4, ny, nx))
