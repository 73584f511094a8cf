"""Steps of the demo (``python -m hyperspy_chemomech demo``); see :mod:`._demo`."""

import time

import numpy as np

#: default grid (px) and energies of the composition step: runs in a few seconds
COMPOSITION_SIZE = 96
COMPOSITION_ENERGIES = 80


def composition_step(state):
    """X-ray stack -> optical density -> drift correction -> composition map.

    Reads ``state["size"]`` (grid px, default 96) and ``state["seed"]``; adds
    ``state["stack"]`` (the raw synthetic stack), ``state["composition"]`` (the
    :class:`~hyperspy_chemomech.signals.CompositionMap`) and
    ``state["truth_composition"]`` (the truth on the aligned grid: ``X``, ``mask``,
    ``thickness`` and the simulation's ``drift``, ``energies``, ``references``).

    Returns
    -------
    dict
        Figures of merit: RMS error of X inside the particle, drift error (px),
        mean predicted uncertainty, timings (s).
    """
    import matplotlib.pyplot as plt

    from .simulate import synthetic_xray_stack
    from .simulate.xray_stack import truth_on_aligned_grid

    size = int(state.get("size") or COMPOSITION_SIZE)
    seed = state.get("seed", 0)
    timings = {}
    t0 = time.perf_counter()
    stack, truth = synthetic_xray_stack(shape=(size, size), n_energies=COMPOSITION_ENERGIES,
                                        i0=1e4, max_drift=5.0, seed=seed)
    timings["simulate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    od = stack.to_optical_density(i0="auto")
    timings["optical_density"] = time.perf_counter() - t0
    raw_od = od.deepcopy()
    t0 = time.perf_counter()
    shifts = od.align_energies()
    timings["align_energies"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    comp = od.get_composition_map(truth["references"])
    timings["composition_map"] = time.perf_counter() - t0

    aligned = truth_on_aligned_grid(truth, shifts)
    inside = aligned["mask"] & comp.particle_mask
    err = np.asarray(comp.data)[inside] - aligned["X"][inside]
    rms = float(np.sqrt(np.mean(err**2)))
    drift_err = float(np.abs(aligned["drift_error"]).max())
    summary = comp.summary()

    e = truth["energies"]
    # figure 1: raw OD frames at the two L3 maxima and the spectra of two regions
    fig, axs = plt.subplots(1, 3, figsize=(14, 4), layout="constrained")
    for ax, e0 in zip(axs[:2], (708.0, 709.8)):
        k = int(np.argmin(np.abs(e - e0)))
        im = ax.imshow(raw_od.data[..., k], cmap="gray")
        ax.set_title(f"OD at {e[k]:.1f} eV (drifting)")
        fig.colorbar(im, ax=ax, shrink=0.8)
    X_al = aligned["X"]
    for lo, hi, label in ((0.0, 0.3, "X < 0.3"), (0.7, 1.0, "X > 0.7")):
        sel = inside & (X_al >= lo) & (X_al <= hi)
        if sel.any():
            axs[2].plot(e, np.nanmean(od.data[sel], axis=0), ".-", ms=3, label=label)
    axs[2].set_xlabel("Energy (eV)")
    axs[2].set_ylabel("OD (aligned)")
    axs[2].legend()
    axs[2].set_title("Mean spectra (non-uniform energy steps)")
    state["figure"]("composition_stack", fig)

    # figure 2: recovered vs true X, error, predicted uncertainty
    fig, axs = plt.subplots(1, 4, figsize=(16, 4), layout="constrained")
    panels = [
        (np.asarray(comp.data), "X recovered", "RdBu_r", (0, 1)),
        (np.where(aligned["mask"], X_al, np.nan), "X true", "RdBu_r", (0, 1)),
        (np.asarray(comp.data) - X_al, f"error (RMS {rms:.3f})", "PuOr", (-0.05, 0.05)),
        (np.where(comp.particle_mask, comp.uncertainty.data, np.nan), "sigma(X) predicted",
         "viridis", (0, 0.03)),
    ]
    for ax, (img, title, cmap, (vmin, vmax)) in zip(axs, panels):
        im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(title)
        fig.colorbar(im, ax=ax, shrink=0.8)
    state["figure"]("composition_map", fig)

    # figure 3: drift recovered vs true
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    d = truth["drift"] - truth["drift"].mean(0)
    s = shifts - shifts.mean(0)
    for i, name in enumerate("yx"):
        ax.plot(e, d[:, i], "-", label=f"true d{name}")
        ax.plot(e, s[:, i], "o", ms=3, label=f"estimated d{name}")
    ax.set_xlabel("Energy (eV)")
    ax.set_ylabel("drift (px)")
    ax.set_title(f"Energy drift, max error {drift_err:.3f} px")
    ax.legend()
    state["figure"]("composition_drift", fig)

    state["stack"] = stack
    state["composition"] = comp
    state["truth_composition"] = {
        "X": np.where(aligned["mask"], X_al, np.nan), "mask": aligned["mask"],
        "thickness": aligned["thickness"], "drift": truth["drift"],
        "energies": truth["energies"], "references": truth["references"],
    }
    return {
        "shape": [size, size],
        "n_energies": int(e.size),
        "rms_error_X": rms,
        "max_drift_px": float(np.abs(truth["drift"]).max()),
        "drift_error_px": drift_err,
        "mean_uncertainty_X": summary.get("mean_uncertainty"),
        "n_particle_pixels": summary["n_pixels"],
        "mask_agreement": float(np.mean(comp.particle_mask == aligned["mask"])),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
