"""The error model of a CompositionMap, read from what it carries (for ``learn_eigenstrain``)."""

import numpy as np

#: metadata nodes written by get_composition_map and CorrelativeTransform.apply
_MAPS = "Chemomech.composition_maps"
_REG = "Chemomech.registration"


def error_model(composition, value, strain):
    """``composition_uncertainty`` of ``learn_eigenstrain`` as the engine takes it.

    Parameters
    ----------
    composition : CompositionMap
        On the strain grid.
    value : "auto", None, array_like or CompositionErrors
        ``"auto"``: the errors as they were made when the map was resampled by
        :meth:`CorrelativeTransform.apply` (the unmixing's sigma on the X-ray
        grid, resampled by the same transform; the transform's covariance when
        it carries one), else the map's own sigma(X) (independent pixels), else
        none. An array: sigma(X) on the strain grid (independent pixels).
    strain : StrainField
        The strain map (its grid is the target of the resampling).

    Returns
    -------
    CompositionErrors or numpy.ndarray or None
    """
    if value is None or not isinstance(value, str):
        return value
    if value != "auto":
        raise ValueError(f"composition_uncertainty must be 'auto', None, a sigma(X) map or a "
                         f"CompositionErrors, got {value!r}")
    md = composition.metadata
    shape = tuple(strain.axes_manager.signal_shape[::-1])
    if md.has_item(f"{_REG}.source_uncertainty"):
        node = md.get_item(_REG).as_dictionary()
        if md.has_item("Chemomech.composition_map.reference_spectra"):  # the unmixing's
            made = md.get_item("Chemomech.composition_map").as_dictionary()
            A = np.asarray(made["reference_spectra"], float).T
            node.update(reference_gram=A.T @ A, unmixing_method=str(made.get("method", "nnls")),
                        references=A)
            for key in ("noise_i0", "noise_n_background", "drift_shifts", "drift_order",
                        "drift_model_refined", "drift_reference"):
                if key in made:
                    node[key] = made[key]
        return _resampled_errors(node, strain)
    if md.has_item(f"{_MAPS}.uncertainty"):
        sigma = np.asarray(md.get_item(f"{_MAPS}.uncertainty"), float)
        if sigma.shape == tuple(shape):
            return sigma
    return None


def _resampled_errors(node, strain):
    """CompositionErrors redrawn on the X-ray grid and resampled as the map was."""
    from .._metadata import offset_nm, pixel_size_nm
    from ..learning import CompositionErrors
    from ..registration import Grid, resample

    matrix = np.asarray(node["transform"]["matrix"], float)
    src = Grid(tuple(int(v) for v in node["source_shape"]),
               tuple(float(v) for v in node["source_scale_nm"]),
               tuple(float(v) for v in node["source_offset_nm"]))
    dst = Grid(tuple(strain.axes_manager.signal_shape[::-1]), tuple(pixel_size_nm(strain)),
               tuple(offset_nm(strain)))
    order = int(node.get("order", 1))
    cov = node.get("transform_covariance")

    def resample_with(fields, m):
        return resample(fields, src, dst, m, order=order)

    return CompositionErrors(np.asarray(node["source_uncertainty"], float),
                             source_draw=_unmixing_draw(node),
                             to_strain=lambda f: resample_with(f, matrix),
                             X_source=np.asarray(node["source_composition"], float),
                             resample_with=resample_with, matrix=matrix,
                             matrix_covariance=None if cov is None else np.asarray(cov, float))


def _unmixing_draw(node):
    """Errors of X redrawn through the unmixing: coefficients from their covariance, then
    the same non-negative least squares and ratio; None if the map lacks what it needs."""
    need = ("source_coefficients", "source_coefficient_covariance", "source_mask")
    if any(k not in node for k in need) or "reference_gram" not in node:
        return None
    from ..spectra import composition_from_coefficients, unmix_block

    t = np.asarray(node["source_coefficients"], float)
    tri = np.asarray(node["source_coefficient_covariance"], float)
    mask = np.asarray(node["source_mask"], bool) & np.isfinite(t).all(axis=-1)
    G = np.asarray(node["reference_gram"], float)
    nnls = node.get("unmixing_method", "nnls") == "nnls"
    K = t.shape[-1]
    iu = np.triu_indices(K)
    cov = np.zeros(tri.shape[:-1] + (K, K))
    cov[..., iu[0], iu[1]] = tri
    cov[..., iu[1], iu[0]] = tri
    tp, cp = t[mask], np.nan_to_num(cov[mask])
    w, v = np.linalg.eigh(cp)
    L = v * np.sqrt(np.clip(w, 0.0, None))[:, None, :]  # per pixel: L L^T = Cov(t)
    X0 = composition_from_coefficients(tp, cp)[0]
    # NNLS in the references' metric: |R t - R t*|^2 with R^T R = G, the data's own problem
    R = np.linalg.cholesky(G).T

    spectral = _spectral_noise(node, t, mask)

    def draw(rng, n, level):
        out = np.full((n,) + mask.shape, np.nan)
        start = getattr(rng, "start", None)  # an antithetic pair's second replays the first
        for i in range(n):
            if start is not None:
                start(i)
            if spectral is not None:
                ts = tp + np.sqrt(level) * spectral(rng)
            else:
                ts = tp + np.sqrt(level) * np.einsum("pij,pj->pi", L, rng.standard_normal(tp.shape))
            if nnls:
                ts = unmix_block(ts @ R.T, R, "nnls", variance=np.ones_like(ts))[:, :K]
            out[i][mask] = composition_from_coefficients(ts, cp)[0] - X0
        return out

    return draw


def _spectral_noise(node, t, mask):
    """Coefficient errors (n_particle, K) made as the measurement's were.

    Every step of the X-ray chain that the noise goes through is made again on the
    fitted model (the unmixing's OD, ``t @ A.T``, on the aligned grid):

    - Poisson noise of each frame (Gaussian, variance exp(OD) / I0), moved by the
      drift correction as the data were (its interpolation correlates neighbours);
    - the I0 estimate's error: the mean of ``n_background_pixels`` empty pixels,
      one error per energy shared by every pixel (when the stack records it);
    - the drift estimate's own error: the joint drift + unmixing fit
      (:func:`~hyperspy_chemomech.spectra.refine_drift_with_model`) linearised at
      the fitted model: its Gauss-Newton step for the noise (``-S^+ J^T (I - P) e``,
      ``S`` its Gauss-Newton matrix with the maps eliminated, ``J`` the model frames'
      gradients, ``P`` the unmixing's hat matrix), the noisy frames moved by it
      (``e + J step``). Its errors follow the model's gradients (the rim, the phase
      boundaries): correlated in space and with the particle's structure, which the
      Poisson noise alone is not. Drift measured against one frame (``reference``
      an index) is that frame's error too: every frame moves by it, the whole map
      with them (the registration, made afterwards on this map's thickness, does
      not take it back: on the demo chain the law's resolution and slopes move
      with it as with the rest). Against the mean the common shift is left out
      (the minimum-norm step);
    - the least squares of the unmixing.

    None when the map does not record how it was made.
    """
    if "noise_i0" not in node or "references" not in node:
        return None
    from ..spectra import apply_energy_drift

    A = np.asarray(node["references"], float)  # (n_energies, K)
    i0 = np.asarray(node["noise_i0"], float)
    if i0.shape != (A.shape[0],):
        return None
    tm = np.nan_to_num(t)
    model = tm @ A.T  # the model's OD; background 0
    sd = np.sqrt(np.exp(model) / i0)
    P = np.linalg.solve(A.T @ A, A.T)  # (K, n_energies)
    shifts = node.get("drift_shifts")
    order = int(node.get("drift_order", 3))
    n_bg = node.get("noise_n_background")
    sd_i0 = None if n_bg is None or int(n_bg) < 1 else 1.0 / np.sqrt(int(n_bg) * i0)
    ref = node.get("drift_reference", "mean")
    ref = int(ref) if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool) else None
    drift = _drift_linearised(tm, A, ref) if (shifts is not None and bool(
        node.get("drift_model_refined", False))) else None

    def noise(rng):
        e = sd * rng.standard_normal(sd.shape)
        if shifts is not None:
            e = np.nan_to_num(apply_energy_drift(e, np.asarray(shifts, float), order))
        if sd_i0 is not None:  # OD = ln I0 - ln I: the I0 estimate's relative error
            e = e + sd_i0 * rng.standard_normal(sd_i0.shape)
        if drift is not None:
            e = drift(e)
        return e[mask] @ P.T

    return noise


def _drift_linearised(t, A, reference=None):
    """``e -> e + J step(e)``: the aligned stack's error (ny, nx, n_energies) with the
    drift re-estimated, to first order, by the joint drift + unmixing fit on the model
    ``t @ A.T`` (the step of :func:`~hyperspy_chemomech.spectra._energy_alignment._joint_step`
    for the noise ``e``, its matrices made once at the model). ``reference``: the frame
    the drift is measured against (its step subtracted from every frame's), or None."""
    ne = A.shape[0]
    pinv = np.linalg.pinv(A)
    gT = np.stack(np.gradient(t, axis=(0, 1)), axis=2)            # (ny, nx, 2, K)
    g = np.einsum("yxak,nk->yxna", gT, A)                          # model frames' gradients
    C = np.einsum("yxai,yxbj->aibj", gT, gT)
    G = np.einsum("ki,aibj,lj->kalb", A, C, A)                     # (nE, 2, nE, 2)
    Ph = A @ pinv
    S = -Ph[:, None, :, None] * G
    idx = np.arange(ne)
    S[idx, :, idx, :] += G[idx, :, idx, :]
    # a common shift is not determined (S is singular along it): the minimum-norm step
    S_pinv = np.linalg.pinv(S.reshape(2 * ne, 2 * ne), rcond=1e-10)
    resid = np.eye(ne) - Ph

    def moved(e):
        b = np.einsum("yxna,yxn->na", g, e @ resid.T).ravel()    # J^T (I - P) e
        step = -(S_pinv @ b).reshape(ne, 2)
        if reference is not None:
            step = step - step[reference]
        return e + np.einsum("yxna,na->yxn", g, step)

    return moved
