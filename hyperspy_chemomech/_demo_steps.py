"""Steps of the demo (``python -m hyperspy_chemomech demo``); see :mod:`._demo`.

One particle is seen twice, as in a correlative experiment: an X-ray spectral
stack on a coarse, rotated, possibly mirrored grid, and a 4D-STEM strain map (with
a virtual dark-field image) on a fine grid. Each step reads and extends ``state``
(keys ``stack``, ``references``, ``strain``, ``stem_image``, then ``composition``,
``transform``, ``composition_on_strain``, ``law``, ``decomposition``) and returns
its figures of merit; against the truth when ``state["data"]`` holds a synthetic
:class:`~hyperspy_chemomech.simulate.correlative.CorrelativeParticle` (the demo),
without it for user files (``python -m hyperspy_chemomech run``).
"""

import time

import numpy as np

#: default strain grid (px): the whole chain runs in well under a minute on 2 cores
DEMO_SHAPE = (150, 250)


def demo_shape(size=None):
    """Strain grid (ny, nx) of the demo: ``size`` is its short side (px), 3:5 like
    :data:`DEMO_SHAPE`; ``None`` gives :data:`DEMO_SHAPE`."""
    return DEMO_SHAPE if not size else (int(size), round(size * 5 / 3))


def _imshow(ax, img, title, cmap="RdBu_r", vmin=None, vmax=None, fig=None):
    im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.set_title(title, fontsize="medium")
    ax.set_xticks([])
    ax.set_yticks([])
    if fig is not None:
        fig.colorbar(im, ax=ax, shrink=0.8)
    return im


def simulate_step(state):
    """Simulate the correlative data set (:func:`~hyperspy_chemomech.simulate.correlative_particle`).

    ``state["size"]`` scales the strain grid (its short side, px; default 150).
    """
    import matplotlib.pyplot as plt

    from .simulate import correlative_particle

    shape = demo_shape(state.get("size"))
    # C(X) between the end members, as learning assumes by default (their stiffnesses differ)
    c = correlative_particle(shape=shape, seed=state.get("seed", 0), stiffness="composition")
    state["data"] = c
    state["strain"] = c.particle.strain_field()
    state["stack"], state["references"] = c.stack, c.references
    state["stem_image"] = c.stem_image
    fig, axs = plt.subplots(1, 3, figsize=(15, 3.8), layout="constrained")
    e = c.stack.axes_manager[-1].axis
    k = int(np.argmin(np.abs(e - 708.0)))
    _imshow(axs[0], np.asarray(c.stack.data)[..., k], f"X-ray counts at {e[k]:.1f} eV",
            "gray", fig=fig)
    _imshow(axs[1], np.asarray(c.stem_image.data), "4D-STEM virtual dark field", "gray",
            fig=fig)
    _imshow(axs[2], c.particle.strain[0], "measured e11 (4D-STEM)", "RdBu_r", -0.05, 0.05,
            fig=fig)
    state["figure"]("data", fig)
    return {"strain_grid_px": list(shape), "strain_pixel_nm": c.particle.pixel_size,
            "xray_grid_px": list(c.stack.data.shape[:2]), "xray_pixel_nm": c.xray_pixel_size,
            "n_energies": int(c.stack.data.shape[-1]),
            "true_rotation_deg": float(c.transform.rotation),
            "true_reflection": bool(c.transform.reflection),
            "n_dislocations": int(len(c.particle.dislocation_positions)),
            "strain_noise": c.particle.noise}


def composition_step(state):
    """X-ray stack -> optical density -> drift correction -> composition map."""
    import matplotlib.pyplot as plt

    c = state.get("data")
    t = {}
    t0 = time.perf_counter()
    od = state["stack"].to_optical_density(i0="auto")
    t["optical_density"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    shifts = od.align_energies(reference=0, features="outline",
                               references=state["references"])
    t["align_energies"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    comp = od.get_composition_map(state["references"])
    t["composition_map"] = time.perf_counter() - t0
    state["composition"] = comp
    X = np.asarray(comp.data)
    out = {"n_particle_pixels": int(comp.particle_mask.sum()),
           "X_mean": float(np.nanmean(X)), "max_drift_found_px": float(np.abs(shifts).max()),
           "timings_s": {k: round(v, 3) for k, v in t.items()}}

    fig, axs = plt.subplots(1, 4 if c is not None else 2, figsize=(16, 3.8),
                            layout="constrained")
    _imshow(axs[0], X, "X from the X-ray stack", vmin=0, vmax=1, fig=fig)
    e = od.axes_manager[-1].axis
    for i, name in enumerate("yx"):
        if c is not None:
            axs[-1].plot(e, c.drift[:, i], "-", label=f"true d{name}")
        axs[-1].plot(e, shifts[:, i], "o", ms=3, label=f"found d{name}")
    axs[-1].set_xlabel("Energy (eV)")
    axs[-1].set_ylabel("drift (X-ray px)")
    axs[-1].legend(fontsize="small")
    if c is not None:
        # frame 0 carries no drift in the simulation, so the aligned grid is the true one
        ok = np.isfinite(X) & np.isfinite(c.xray_composition)
        out["rms_error_X"] = float(np.sqrt(np.mean((X - c.xray_composition)[ok] ** 2)))
        out["drift_error_px"] = float(np.abs(shifts - c.drift).max())
        _imshow(axs[1], c.xray_composition, "X true (X-ray grid)", vmin=0, vmax=1, fig=fig)
        _imshow(axs[2], X - c.xray_composition, f"error (RMS {out['rms_error_X']:.3f})",
                "PuOr", -0.1, 0.1, fig=fig)
        axs[-1].set_title(f"drift, max error {out['drift_error_px']:.2f} px", fontsize="medium")
    state["figure"]("composition", fig)
    return out


def registration_step(state):
    """Register the X-ray thickness onto the 4D-STEM dark field; resample X onto the strain grid."""
    from . import register
    from .registration import apply_matrix

    c, comp = state.get("data"), state["composition"]
    thick = comp.thickness
    thick.data = np.nan_to_num(thick.data)  # no particle, no thickness
    tr = register(moving=thick, fixed=state["stem_image"])
    state["transform"] = tr
    state["composition_on_strain"] = tr.apply(comp, onto=state["strain"])
    fig = tr.plot(thick, state["stem_image"])
    state["figure"]("registration", fig if hasattr(fig, "savefig") else fig[0].figure)
    out = {"rotation_deg": float(tr.rotation), "reflection": bool(tr.reflection),
           "scale": float(tr.scale), "score": float(tr.score) if tr.score is not None else None}
    if c is not None:
        ps = c.particle.pixel_size
        ys, xs = np.nonzero(c.particle.mask)
        pts = np.column_stack([xs, ys]) * ps
        q = apply_matrix(np.linalg.inv(c.transform.matrix), pts)
        err = np.hypot(*(apply_matrix(tr.matrix, q) - pts).T) / ps
        out.update(median_error_px=float(np.median(err)), max_error_px=float(err.max()),
                   rotation_error_deg=float(abs((tr.rotation - c.transform.rotation + 180)
                                                % 360 - 180)),
                   mirror_right=bool(tr.reflection) == bool(c.transform.reflection))
    return out


def learning_step(state):
    """Learn eps0(X) from the strain and the registered composition (default settings)."""
    c = state.get("data")
    law = state["strain"].learn_eigenstrain(state["composition_on_strain"],
                                            **state.get("learn_options", {}))
    state["law"] = law
    v = law.vegard()
    state["figure"]("law", law.plot())
    info = law.metadata.Chemomech.law
    out = {"slopes": v["slopes"].tolist(), "ci95": v["ci95"].tolist(),
           "linearity_p_value": v["linearity_p_value"], "vegard_rejected": v["vegard_rejected"],
           "degree": int(info.degree), "resolution_sigma_px": float(info.resolution_sigma_px),
           "resolution_source": str(info.resolution_source)}
    if c is not None:
        truth = np.asarray(c.particle.law.slopes)
        out.update(true_slopes=truth.tolist(), slope_rel_error=(v["slopes"] / truth - 1).tolist(),
                   truth_inside_ci95=[bool(lo <= t <= hi) for (lo, hi), t in
                                      zip(v["ci95"], truth)])
    return out


def decomposition_step(state):
    """Split the strain into chemical, coherency and residual parts; find dislocations."""
    import matplotlib.pyplot as plt

    from ._metadata import pixel_size_nm

    c = state.get("data")
    parts = state["strain"].decompose(state["composition_on_strain"], state["law"])
    state["decomposition"] = parts
    fig = parts.plot()
    state["figure"]("decomposition", fig if hasattr(fig, "savefig") else fig[0].figure)
    found = parts.residual.find_dislocations()
    ps = np.asarray(pixel_size_nm(state["strain"]))
    true_yx = np.asarray(c.particle.dislocation_positions) if c is not None else np.zeros((0, 2))
    got_yx = (np.column_stack([found["y"], found["x"]]) / ps if len(found)
              else np.zeros((0, 2)))
    matched = 0
    for p in true_yx:
        if len(got_yx) and np.min(np.hypot(*(got_yx - p).T)) <= 3:
            matched += 1
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    rho = parts.residual.dislocation_density()
    img = np.asarray(rho.data)[-1] if np.asarray(rho.data).ndim == 3 else np.asarray(rho.data)
    _imshow(ax, img, "residual Nye density |alpha| and cores found", "magma", fig=fig)
    if len(got_yx):
        ax.plot(got_yx[:, 1], got_yx[:, 0], "c+", ms=14, mew=2, label="found")
    if len(true_yx):
        ax.plot(true_yx[:, 1], true_yx[:, 0], "wo", mfc="none", ms=12, label="true")
    ax.legend(loc="lower right", fontsize="small")
    state["figure"]("dislocations", fig)
    summary = parts.summary()
    out = {"dislocations_found": int(len(got_yx)),
           "dislocations": [{"x_nm": float(d["x"]), "y_nm": float(d["y"]),
                             "b_x_nm": float(d["b_x"]), "b_y_nm": float(d["b_y"])} for d in found],
           "summary": summary if isinstance(summary, dict) else str(summary)}
    if c is not None:
        out.update(dislocations_true=int(len(true_yx)), dislocations_matched_3px=int(matched))
    return out
