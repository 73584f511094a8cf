"""Split a measured strain map into reference, chemical, coherency and residual parts.

With the eigenstrain law eps0(X) known and the composition X(r) measured, the
measured total strain and rotation (image frame) is

    eps_meas = eps_ref + eps0(X) + eps_el + eps_res,

where ``S[eps0(X)]`` (the total strain and rotation of the traction-free particle
carrying that eigenstrain, from one factorised finite-element solve) equals
``eps0(X) + eps_el``. So

- chemical   = eps0(X(r)) rotated to the image frame, zero rotation;
- coherency  = S[eps0(X)] - chemical (the elastic strain, with the lattice
  rotation the misfit causes); stress = C(X) : coherency;
- residual   = eps_meas - eps_ref - S[eps0(X)]: noise, misregistration, a wrong
  law and everything the chemistry does not explain (dislocations);
- reference  = eps_ref, a constant per component.

and ``measured = reference + chemical + coherency + residual`` holds pixel by pixel
to round-off, for all four components.
"""

from dataclasses import dataclass

import numpy as np

from ..fields import (
    COMPONENTS,
    masked_gaussian,
    rotate_strain,
    validate_strain_composition,
)
from ..mechanics import get_solver


@dataclass
class Decomposition:
    """Plain-array result of :func:`decompose` (image frame, NaN outside the particle).

    Attributes
    ----------
    chemical, coherency, residual : numpy.ndarray, shape (4, ny, nx)
        e11, e22, e12 (tensor shear, dimensionless) and theta (rad) of each part.
    reference : numpy.ndarray, shape (4,)
        Constant reference strain and rotation offset.
    stress : numpy.ndarray, shape (3, ny, nx)
        sigma_11, sigma_22, sigma_12 (GPa) of the coherency strain.
    mask : numpy.ndarray of bool, shape (ny, nx)
        The particle (finite-element body).
    residual_matched : numpy.ndarray, shape (4, ny, nx) or None
        The residual at the composition map's resolution (measured strain blurred
        with the same Gaussian as the composition), when ``resolution_sigma_px > 0``.
    reference_source : str
        ``"given"`` or ``"fit"`` (robust median of measured - S[eps0] in the particle).
    """

    chemical: np.ndarray
    coherency: np.ndarray
    residual: np.ndarray
    reference: np.ndarray
    stress: np.ndarray
    mask: np.ndarray
    residual_matched: np.ndarray = None
    reference_source: str = "given"

    @property
    def total_model(self):
        """S[eps0(X)] = chemical + coherency, (4, ny, nx)."""
        return self.chemical + self.coherency


def chemical_strain(law, X, mask, crystal_angle=0.0):
    """Image-frame eigenstrain eps0(X(r)) with zero rotation.

    Parameters
    ----------
    law : callable or object with ``evaluate``
        ``law(X)`` for a 1-D array of compositions returns the crystal-frame
        eps0(X) - eps0(0), shape (n_comp, len(X)) with n_comp 2 ([100], [001]) or 3
        (with the tensor shear); e.g. :meth:`EigenstrainLaw.evaluate`, or a
        :class:`~hyperspy_chemomech.learning.LawFit` / ``EigenstrainLaw`` itself.
    X : numpy.ndarray, shape (ny, nx)
        Composition in [0, 1] (finite inside ``mask``).
    mask : numpy.ndarray of bool, shape (ny, nx)
    crystal_angle : float or numpy.ndarray (ny, nx)
        Angle (rad) from image +x to [100], toward +y.

    Returns
    -------
    numpy.ndarray, shape (4, ny, nx)
        e11, e22, e12 (dimensionless) and theta = 0, NaN outside ``mask``.
    """
    if hasattr(law, "evaluate"):   # LawFit, EigenstrainLaw (a signal is callable too)
        law = law.evaluate
    if not callable(law):
        raise TypeError(f"law must be a callable X -> eps0(X) or have .evaluate, got "
                        f"{type(law).__name__}")
    values = np.asarray(law(X[mask]), dtype=float)
    n = int(mask.sum())
    if values.ndim != 2 or values.shape[1] != n or values.shape[0] not in (2, 3):
        raise ValueError("the law must return (n_components, len(X)) with 2 ([100], [001]) or "
                         f"3 (with shear) components, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("the law gives non-finite eigenstrain inside the particle (composition "
                         "outside its range with extrapolate=False?)")
    crystal = np.zeros((3, n))
    crystal[:values.shape[0]] = values
    angle = np.asarray(crystal_angle, dtype=float)
    if angle.ndim:
        angle = angle[mask]
    out = np.full((4,) + X.shape, np.nan)
    out[:3, mask] = rotate_strain(crystal, angle)
    out[3, mask] = 0.0
    return out


def robust_reference(data, model, mask):
    """Median of ``data - model`` over the particle, per component (NaN-aware).

    Parameters
    ----------
    data, model : numpy.ndarray, shape (4, ny, nx)
    mask : numpy.ndarray of bool, shape (ny, nx)

    Returns
    -------
    numpy.ndarray, shape (4,)
    """
    diff = (data - model)[:, mask]
    out = np.empty(diff.shape[0])
    for c, d in enumerate(diff):
        d = d[np.isfinite(d)]
        if d.size == 0:
            raise ValueError(f"no finite {COMPONENTS[c]} data inside the particle to fit the "
                             "reference from; pass reference=")
        out[c] = np.median(d)
    return out


def decompose(strain, X, pixel_size, law, stiffness, *, crystal_angle=0.0, mask=None,
              reference=None, resolution_sigma_px=0.0, boundary="free", solver=None,
              show_progressbar=None):
    """Decompose measured strain into reference, chemical, coherency and residual parts.

    Parameters
    ----------
    strain : numpy.ndarray, shape (4, ny, nx)
        Measured e11, e22, e12 (tensor shear, dimensionless) and theta (rad), image
        frame; NaN marks missing data.
    X : numpy.ndarray, shape (ny, nx)
        Composition (Li fraction, 0..1) on the strain grid; the particle is where it
        is finite (or ``mask``).
    pixel_size : float or (float, float)
        Pixel size (dy, dx) in nm.
    law : callable or object with ``evaluate``
        ``law(X) -> (n_comp, len(X))`` crystal-frame eps0(X) - eps0(0) for [100],
        [001] (, shear), e.g. ``EigenstrainLaw.evaluate`` or a ``LawFit``.
    stiffness : array_like (3, 3), pair, callable or str
        Plane stiffness (GPa) in the crystal frame, as accepted by
        :class:`~hyperspy_chemomech.mechanics.ParticleElasticity`.
    crystal_angle : float
        Angle (rad) from image +x to [100], toward +y.
    mask : numpy.ndarray of bool, optional
        The body, overriding ``isfinite(X)``.
    reference : array_like of 4 floats, optional
        The constant reference (e11, e22, e12, theta), e.g. fit jointly with the law.
        ``None`` fits it as the median of ``strain - S[eps0(X)]`` in the particle.
        A NaN entry is fitted that way too.
    resolution_sigma_px : float
        Gaussian sigma (strain pixels) of the composition map's point-spread function.
        When positive, ``residual_matched`` compares the measured strain blurred to
        that resolution with the model (which carries the composition's blur).
    boundary : {"free", "dirichlet"}
        ``"free"``: S is the traction-free particle. ``"dirichlet"``: the body's edge
        is held at the measured displacement (the least-squares integral of the
        measured distortion), for a field of view that cuts the particle: S[eps0] is
        then the response to the eigenstrain and that edge displacement together,
        and the coherency part includes what the surroundings impose.
    solver : ParticleElasticity, optional
        A solver factorised for this mask, stiffness and angle; by default the one
        cached by :func:`hyperspy_chemomech.mechanics.get_solver` (the same that
        learning used, so nothing is factorised again).
    show_progressbar : bool, optional

    Returns
    -------
    Decomposition

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_chemomech.decomposition import decompose
    >>> from hyperspy_chemomech.mechanics import isotropic_stiffness, plane_stiffness
    >>> X = np.full((20, 30), np.nan); X[4:16, 5:25] = 0.0; X[4:16, 15:25] = 1.0
    >>> law = lambda x: np.stack([0.05 * x, -0.02 * x])
    >>> q = plane_stiffness(isotropic_stiffness(100.0, 0.3))
    >>> free = np.zeros((4, 20, 30))                 # the particle as measured
    >>> d = decompose(free, X, 2.0, law, q, reference=np.zeros(4))
    >>> total = d.reference[:, None, None] + d.chemical + d.coherency + d.residual
    >>> bool(np.allclose(total[:, 4:16, 5:25], 0.0))
    True
    """

    strain, X, mask = validate_strain_composition(strain, X, mask, pixel_size)
    if boundary not in ("free", "dirichlet"):
        raise ValueError(f"boundary must be 'free' or 'dirichlet', got {boundary!r}")
    chem = chemical_strain(law, X, mask, crystal_angle)
    if solver is None:
        solver = get_solver(mask, pixel_size, stiffness, composition=X,
                            crystal_angle=crystal_angle, boundary=boundary)
    elif solver.shape != mask.shape or not np.array_equal(solver.mask, mask):
        raise ValueError("the solver was built for another particle mask")
    elif solver.boundary != boundary:
        raise ValueError(f"the solver has boundary={solver.boundary!r}, the decomposition "
                         f"boundary={boundary!r}")
    edge = None
    if boundary == "dirichlet":
        # the reference strain is no elastic strain: a known one is taken out of the
        # measured edge displacement (with C(X) it would not deform the body uniformly)
        known = None if reference is None else np.array(reference, dtype=float).ravel()
        if known is not None and known.shape == (4,) and np.isfinite(known[:3]).all():
            off = np.r_[known[:3], 0.0][:, None, None]
            edge = solver.measured_edge_displacement(strain - off)
        else:
            edge = solver.measured_edge_displacement(strain)
    sol = solver.solve(np.where(mask, chem[:3], 0.0), boundary_displacement=edge,
                       show_progressbar=show_progressbar)
    total = sol.strain_and_rotation.copy()                        # S[eps0(X)]
    total[:, ~mask] = np.nan
    coherency = total - chem

    source = "given"
    if reference is None:
        ref = robust_reference(strain, total, mask)
        source = "fit"
    else:
        ref = np.array(reference, dtype=float).ravel()
        if ref.shape != (4,) or np.isinf(ref).any():
            raise ValueError(f"reference must be 4 finite numbers (e11, e22, e12, theta), got "
                             f"{reference!r}")
        if np.isnan(ref).any():
            fitted = robust_reference(strain, total, mask)
            missing = np.isnan(ref)
            ref[missing] = fitted[missing]
            source = "given, fitted: " + ", ".join(np.array(COMPONENTS)[missing])
    residual = strain - ref[:, None, None] - total
    residual[:, ~mask] = np.nan

    matched = None
    sigma = float(resolution_sigma_px or 0.0)
    if sigma < 0 or not np.isfinite(sigma):
        raise ValueError(f"resolution_sigma_px must be >= 0, got {resolution_sigma_px!r}")
    if sigma > 0:
        matched = masked_gaussian(strain, mask, sigma) - ref[:, None, None] - total
        matched[:, ~mask] = np.nan
    return Decomposition(chemical=chem, coherency=coherency, residual=residual, reference=ref,
                         stress=sol.stress, mask=mask.copy(), residual_matched=matched,
                         reference_source=source)
