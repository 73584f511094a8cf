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


def _imshow(ax, img, title, cmap="RdBu_r", vmin=None, vmax=None, fig=None, pixel=None,
            units="nm", label=None):
    """One calibrated map: axes in ``units`` (pixel size ``pixel``), scale bar, colour bar.

    ``label`` is the colour bar's label (with units); NaN stays transparent.
    """
    import matplotlib.pyplot as plt

    from .signals import add_scalebar

    img = np.asarray(img, dtype=float)
    ny, nx = img.shape
    p = 1.0 if pixel is None else float(pixel)
    extent = (-p / 2, (nx - 0.5) * p, (ny - 0.5) * p, -p / 2)
    cm = plt.get_cmap(cmap).with_extremes(bad=(0, 0, 0, 0))
    im = ax.imshow(img, cmap=cm, vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest")
    ax.set_title(title, fontsize="medium")
    ax.set_xlabel(f"x ({units})" if pixel is not None else "x (px)")
    ax.set_ylabel(f"y ({units})" if pixel is not None else "y (px)")
    if pixel is not None:
        add_scalebar(ax, nx * p, units)
    if fig is not None:
        cb = fig.colorbar(im, ax=ax, shrink=0.8)
        if label:
            cb.set_label(label)
    return im


def _px(signal):
    """Pixel size (nm) of a calibrated image signal (its x axis)."""
    from ._metadata import pixel_size_nm

    return float(pixel_size_nm(signal)[1])


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
    fig, axs = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
    e = c.stack.axes_manager[-1].axis
    k = int(np.argmin(np.abs(e - 708.0)))
    _imshow(axs[0], np.asarray(c.stack.data)[..., k], f"X-ray transmitted counts at {e[k]:.1f} eV",
            "gray", fig=fig, pixel=c.xray_pixel_size, label="counts")
    _imshow(axs[1], np.asarray(c.stem_image.data), "4D-STEM virtual dark field", "gray",
            fig=fig, pixel=c.particle.pixel_size, label="intensity (a.u.)")
    ny, nx = shape
    state["figure"](
        "data", fig,
        "The two measurements of one particle: the X-ray stack (one energy of "
        f"{c.stack.data.shape[-1]}) on a coarse grid of {c.xray_pixel_size:g} nm pixels, rotated "
        f"by {c.transform.rotation:.1f} deg{' and mirrored' if c.transform.reflection else ''} "
        f"relative to the 4D-STEM scan ({ny} x {nx} px of {c.particle.pixel_size:g} nm).",
        "The particle is dark in transmission (absorbs) and bright in dark field; the same "
        "outline, seen at two resolutions and orientations, is what the registration matches.",
        f"X-ray {c.stack.data.shape[0]} x {c.stack.data.shape[1]} px of {c.xray_pixel_size:g} nm "
        f"at {c.stack.data.shape[-1]} energies ({e[0]:.1f} to {e[-1]:.1f} eV); 4D-STEM "
        f"{ny} x {nx} px of {c.particle.pixel_size:g} nm")
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

    px = _px(comp)
    fig, axs = plt.subplots(1, 4 if c is not None else 2, figsize=(18, 3.8),
                            layout="constrained")
    _imshow(axs[0], X, "X from the X-ray stack", vmin=0, vmax=1, fig=fig, pixel=px,
            label="Li fraction X")
    e = od.axes_manager[-1].axis
    for i, name in enumerate("yx"):
        if c is not None:
            axs[-1].plot(e, c.drift[:, i], "-", label=f"true d{name}")
        axs[-1].plot(e, shifts[:, i], "o", ms=3, label=f"found d{name}")
    axs[-1].set_xlabel("Energy (eV)")
    axs[-1].set_ylabel("drift (X-ray px)")
    axs[-1].legend(fontsize="small")
    axs[-1].set_title(f"drift between energies, largest {out['max_drift_found_px']:.2f} px",
                      fontsize="medium")
    numbers = (f"{out['n_particle_pixels']} particle pixels of {px:g} nm, mean X "
               f"{out['X_mean']:.3f}, largest drift found {out['max_drift_found_px']:.2f} px")
    if c is not None:
        # frame 0 carries no drift in the simulation, so the aligned grid is the true one
        ok = np.isfinite(X) & np.isfinite(c.xray_composition)
        out["rms_error_X"] = float(np.sqrt(np.mean((X - c.xray_composition)[ok] ** 2)))
        out["drift_error_px"] = float(np.abs(shifts - c.drift).max())
        _imshow(axs[1], c.xray_composition, "X true (X-ray grid)", vmin=0, vmax=1, fig=fig,
                pixel=px, label="Li fraction X")
        _imshow(axs[2], X - c.xray_composition, f"error (RMS {out['rms_error_X']:.3f})",
                "PuOr", -0.1, 0.1, fig=fig, pixel=px, label="X found - X true")
        axs[-1].set_title(f"drift, max error {out['drift_error_px']:.2f} px", fontsize="medium")
        numbers += (f"; RMS error of X {out['rms_error_X']:.3f}, largest drift error "
                    f"{out['drift_error_px']:.2f} px")
    state["figure"](
        "composition", fig,
        "The composition map: the transmitted counts turned into optical density, the frames "
        "aligned across energies (drift correction), and each pixel unmixed into the two "
        "reference spectra (FePO4, X = 0; LiFePO4, X = 1)."
        + (" Beside it the truth and the error." if c is not None else ""),
        "X should lie in [0, 1] with two phases (blue Li-poor, red Li-rich) and smooth "
        "interfaces; the error map should show no pattern that follows the particle (a "
        "residual drift makes a dipole along the edges); found drifts follow the true ones.",
        numbers)
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
                   mirror_right=bool(tr.reflection) == bool(c.transform.reflection),
                   true_rotation_deg=float(c.transform.rotation))
    numbers = (f"rotation {out['rotation_deg']:.2f} deg, "
               f"{'mirrored' if out['reflection'] else 'not mirrored'}, scale {out['scale']:.4f}"
               + (f", score {out['score']:.3f}" if out["score"] is not None else ""))
    if c is not None:
        numbers += (f"; truth {c.transform.rotation:.2f} deg"
                    f"{', mirrored' if c.transform.reflection else ''}: rotation error "
                    f"{out['rotation_error_deg']:.2f} deg, median position error "
                    f"{out['median_error_px']:.2f} px (max {out['max_error_px']:.2f} px)")
    state["figure"](
        "registration", fig if hasattr(fig, "savefig") else fig[0].figure,
        "The registration of the X-ray thickness map (moving) onto the 4D-STEM dark field "
        "(fixed): a checkerboard of the two, and the registered outline of the particle on "
        "the dark field. Axes in nm on the strain grid.",
        "In the checkerboard the edges should continue across the tiles without a step; the "
        "outline should follow the particle's edge all round.",
        numbers)
    return out


def learning_step(state):
    """Learn eps0(X) from the strain and the registered composition (default settings)."""
    c = state.get("data")
    strain, comp = state["strain"], state["composition_on_strain"]
    ny, nx = strain.axes_manager.signal_shape[::-1]
    state["figure"](
        "strain", strain.plot(),
        f"The measured strain field ({ny} x {nx} px of {_px(strain):g} nm): e11, e22, e12 "
        "(tensor shear) in the image frame and the lattice rotation theta (rad). The strains "
        "share one colour scale, centred on zero; the rotation has its own. Relative to the "
        "lattice of the strain map's reference region.",
        "Li-rich domains expand against Li-poor ones; the coherency of the two phases makes "
        "shear and rotation at the interfaces. Dislocations hide in it: they appear in the "
        "residual of the decomposition.",
        f"{int(np.isfinite(np.asarray(strain.data)[0]).sum())} pixels with data")
    law = strain.learn_eigenstrain(comp, **state.get("learn_options", {}))
    state["law"] = law
    v = law.vegard()
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
    comps = ("[100]", "[001]", "shear")
    numbers = "; ".join(
        f"{comps[i]} slope {sl:.5f} (95 % {lo:.5f} to {hi:.5f})"
        + (f", truth {out['true_slopes'][i]:.5f}" if c is not None else "")
        for i, (sl, (lo, hi)) in enumerate(zip(v["slopes"], v["ci95"])))
    numbers += (f"; degree {out['degree']} ({law.metadata.Chemomech.law.basis}), linearity "
                f"p = {out['linearity_p_value']:.3g}, composition resolution "
                f"{out['resolution_sigma_px']:.2f} px sigma ({out['resolution_source']})")
    state["figure"](
        "law", law.plot(),
        "The learned eigenstrain law eps0(X) - eps0(0) along the crystal axes, with its 95 % "
        "pointwise band, the Vegard (linear) fit and, in grey at the bottom, how many particle "
        "pixels have each composition; X outside the observed range is shaded (extrapolation).",
        "The band should be narrow where there are many pixels and widen where there are few; "
        "a curve that leaves the Vegard line by more than its band means Vegard's law does not "
        "hold (the linearity p-value says how surely).",
        numbers)
    return out


def decomposition_step(state):
    """Split the strain into chemical, coherency and residual parts; find dislocations."""
    from ._metadata import pixel_size_nm

    c = state.get("data")
    parts = state["strain"].decompose(state["composition_on_strain"], state["law"])
    state["decomposition"] = parts
    summary = parts.summary()
    share = summary["variance_fraction"]
    rms = summary["rms"]
    comps = summary["components"]
    state["figure"](
        "decomposition", parts.plot(),
        "The measured strain (its reference removed) split pixel by pixel into the chemical "
        "expansion eps0(X(r)), the coherency strain (the elastic response that keeps the two "
        "phases bonded) and the residual, what the chemistry does not explain. Columns share "
        "one colour scale; scale bar in nm.",
        "The chemical and coherency rows should add up to the measured one; the residual "
        "should be noise with a few point-like features (dislocations), not domain-shaped "
        "patterns (those would mean a wrong law, registration or resolution).",
        "share of the measured variance explained by the chemistry (chemical + coherency): "
        + ", ".join(f"{n} {share['chemical'][k] + share['coherency'][k]:.2f}"
                    for k, n in enumerate(comps))
        + "; residual RMS: " + ", ".join(f"{n} {rms['residual'][k]:.2e}"
                                          for k, n in enumerate(comps)))
    stress = np.asarray(parts.stress.data, dtype=float)
    finite = np.isfinite(stress).any()
    smax = float(np.nanmax(np.abs(stress))) if finite else float("nan")
    # the largest value sits on a corner pixel; the 99th percentile is what the map shows
    s99 = float(np.nanpercentile(np.abs(stress), 99)) if finite else float("nan")
    state["figure"](
        "stress", parts.plot_stress(),
        "The coherency stress sigma_11, sigma_22, sigma_12 (GPa, image frame) that the "
        "composition field causes, from the material's stiffness; one colour scale, centred "
        "on zero.",
        "Tension (red) in the phase that is squeezed to fit the other, compression (blue) in "
        "its partner; the largest stresses at the interfaces and where domains end at the "
        "free surface.",
        f"99th percentile of |sigma| {s99:.2f} GPa (the colour limit), largest {smax:.2f} GPa")
    found = parts.residual.find_dislocations()
    ps = np.asarray(pixel_size_nm(state["strain"]))
    true_yx = np.asarray(c.particle.dislocation_positions) if c is not None else np.zeros((0, 2))
    got_yx = (np.column_stack([found["y"], found["x"]]) / ps if len(found)
              else np.zeros((0, 2)))
    matched = 0
    for p in true_yx:
        if len(got_yx) and np.min(np.hypot(*(got_yx - p).T)) <= 3:
            matched += 1
    fig = parts.residual.plot_dislocations(found)
    ax = fig.axes[0]
    if len(true_yx):
        ax.plot(true_yx[:, 1] * ps[1], true_yx[:, 0] * ps[0], "x", color="gold", ms=9,
                mew=1.5, label="true core")
        ax.legend(loc="lower right", fontsize="small", framealpha=0.8)
    numbers = f"{len(found)} core(s) found"
    if c is not None:
        numbers += f", {matched} of {len(true_yx)} true cores matched within 3 px"
    if len(found):
        numbers += "; |b| " + ", ".join(f"{b:.2f}" for b in np.hypot(found["b_x"],
                                                                    found["b_y"])) + " nm"
    state["figure"](
        "dislocations", fig,
        "Dislocations in the residual: the magnitude of the Nye tensor |alpha| (Burgers "
        "content per area, nm^-1), the cores found (circles) and their Burgers vectors "
        "(arrows, direction; the length in nm is written beside each)"
        + (", and the true cores (yellow crosses)." if c is not None else "."),
        "Each core is a bright point with an arrow; a chain of bright pixels along an "
        "interface is a misfit of the law or of the registration, not a dislocation.",
        numbers)
    out = {"dislocations_found": int(len(got_yx)),
           "dislocations": [{"x_nm": float(d["x"]), "y_nm": float(d["y"]),
                             "b_x_nm": float(d["b_x"]), "b_y_nm": float(d["b_y"])} for d in found],
           "max_abs_stress_GPa": smax, "p99_abs_stress_GPa": s99,
           "summary": summary if isinstance(summary, dict) else str(summary)}
    if c is not None:
        out.update(dislocations_true=int(len(true_yx)), dislocations_matched_3px=int(matched))
    return out


def summary_rows(steps):
    """The report's table: (quantity, value, 95 % interval, truth, verdict) per row.

    ``steps`` are the dicts the steps returned; the truth and a verdict against it
    appear where the data is synthetic (``*_true`` / ``true_*`` keys present).
    """
    rows = []
    comp = steps.get("composition")
    if comp:
        rows.append(("mean X in the particle", f"{comp['X_mean']:.3f}", "", "", ""))
        if "rms_error_X" in comp:
            rows.append(("RMS error of X", f"{comp['rms_error_X']:.4f}", "", "0",
                         "ok" if comp["rms_error_X"] < 0.03 else "poor (> 0.03)"))
            rows.append(("largest drift error (X-ray px)", f"{comp['drift_error_px']:.2f}", "",
                         "0", "ok" if comp["drift_error_px"] < 0.5 else "poor (> 0.5 px)"))
    reg = steps.get("registration")
    if reg:
        rows.append(("rotation X-ray -> STEM (deg)", f"{reg['rotation_deg']:.2f}", "",
                     f"{reg['true_rotation_deg']:.2f}" if "true_rotation_deg" in reg else "",
                     "" if "rotation_error_deg" not in reg else
                     ("ok" if reg["rotation_error_deg"] < 1 else "poor (> 1 deg)")))
        rows.append(("mirror", "yes" if reg["reflection"] else "no", "", "", ""
                     if "mirror_right" not in reg else
                     ("right" if reg["mirror_right"] else "WRONG")))
        if "median_error_px" in reg:
            rows.append(("median registration error (STEM px)", f"{reg['median_error_px']:.2f}",
                         "", "0", "ok" if reg["median_error_px"] < 1 else "poor (> 1 px)"))
    law = steps.get("learning")
    if law:
        for i, (name, sl, (lo, hi)) in enumerate(zip(("[100]", "[001]", "shear"),
                                                     law["slopes"], law["ci95"])):
            t = law.get("true_slopes")
            verdict = ""
            if t is not None:
                inside = law["truth_inside_ci95"][i]
                rel = law["slope_rel_error"][i]
                verdict = (f"{'inside' if inside else 'outside'} the interval, "
                           f"{100 * rel:+.1f} %")
            rows.append((f"Vegard slope {name} (per unit X)", f"{sl:.5f}",
                         f"{lo:.5f} to {hi:.5f}", "" if t is None else f"{t[i]:.5f}", verdict))
        rows.append(("linearity test p-value", f"{law['linearity_p_value']:.3g}", "", "",
                     "Vegard rejected at 5 %" if law["vegard_rejected"] else
                     "consistent with Vegard"))
    dec = steps.get("decomposition")
    if dec:
        rows.append(("dislocations found", str(dec["dislocations_found"]), "",
                     str(dec.get("dislocations_true", "")),
                     "" if "dislocations_true" not in dec else
                     f"{dec['dislocations_matched_3px']} matched within 3 px"))
        rows.append(("coherency stress, 99th percentile of |sigma| (GPa)",
                     f"{dec['p99_abs_stress_GPa']:.2f}", "", "", ""))
    return rows
