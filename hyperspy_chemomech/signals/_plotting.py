"""Figures of the signal classes: labelled component panels, the law, dislocation maps.

The classes keep thin ``plot`` methods that call these functions, so the look is
defined once. Component panels are drawn with HyperSpy's
:func:`hyperspy.api.plot.plot_images` (its axes, scale bars and colour bars); the
law and dislocation figures are plain matplotlib. No backend is chosen here.
"""

import inspect

import numpy as np

from .._metadata import spatial_axes

#: Panel titles and colour-bar labels of the known components (units included).
_LABELS = {
    "e11": ("e11", "strain"),
    "e22": ("e22", "strain"),
    "e12": ("e12 (tensor shear)", "strain"),
    "theta": ("theta (rotation)", "rotation (rad)"),
    "sigma_11": ("sigma_11", "stress (GPa)"),
    "sigma_22": ("sigma_22", "stress (GPa)"),
    "sigma_12": ("sigma_12", "stress (GPa)"),
}
#: Components that share one colour scale (by kind: strains, rotation, stress, ...).
_KIND = {"e11": "strain", "e22": "strain", "e12": "strain", "theta": "rotation",
         "sigma_11": "stress", "sigma_22": "stress", "sigma_12": "stress"}
#: Keywords plot_component_maps sets itself (the rest of plot_images' are passed on).
_OWN = {"images", "cmap", "per_row", "label", "colorbar", "centre_colormap", "scalebar",
        "vmin", "vmax", "fig", "ax", "overlay", "suptitle"}


def symmetric_limit(values, percentile=99.0):
    """Half-range of a colour scale centred on zero: a percentile of ``|values|``.

    Parameters
    ----------
    values : array_like
        Any shape; NaN (no data) is ignored.
    percentile : float
        In (0, 100]; 100 is the largest magnitude.

    Returns
    -------
    float
        Positive (1.0 where there is no finite nonzero value).
    """
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v)]
    if not v.size:
        return 1.0
    lim = float(np.percentile(v, percentile))
    return lim if lim > 0 else (float(v.max()) or 1.0)


def _unit_of(quantity):
    """The unit part of a HyperSpy quantity label such as ``"stress (GPa)"``."""
    if not quantity:
        return ""
    return quantity.split(" (")[0] if quantity.startswith(("nm", "m^")) else quantity


def component_labels(signal, names=None):
    """Component names, panel titles, colour-bar labels and scale groups of a (n | y, x) map."""
    n = signal.axes_manager.navigation_shape[0] if signal.axes_manager.navigation_dimension else 1
    if names is None:
        if signal.metadata.has_item("Signal.components"):
            names = list(signal.metadata.Signal.components)
        else:
            names = [f"component {i}" for i in range(n)]
    if len(names) != n:
        raise ValueError(f"{len(names)} component names for {n} maps")
    quantity = signal.metadata.get_item("Signal.quantity", "")
    titles, units, kinds = [], [], []
    base = _unit_of(quantity)
    for name in names:
        title, unit = _LABELS.get(name, (name, ""))
        if name not in _LABELS:
            # Nye maps and others: the unit is in the signal's quantity
            unit = f"{name} ({base})" if base else name
        titles.append(title)
        units.append(unit)
        # signed maps of one unit share a scale; a magnitude has its own, from zero
        kinds.append("magnitude:" + name if name.startswith("|")
                     else _KIND.get(name, base or name))
    return list(names), titles, units, kinds


def _check_kwargs(kwargs, allowed, where):
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise TypeError(
            f"{where} got unexpected keyword argument(s) {unknown}; it accepts "
            f"{sorted(allowed)}")


def plot_component_maps(signal, names=None, percentile=99.0, cmap="RdBu_r", per_row=2,
                        scalebar=True, figsize=None, fig=None, suptitle=None, **kwargs):
    """Labelled panels of a (component | y, x) map: strain, stress, Nye tensor.

    One panel per component, axes in the calibrated units (nm), a scale bar, one
    colour bar per panel labelled with its unit, NaN (outside the particle)
    transparent. Signed components get a diverging colour map centred on zero,
    with one symmetric limit per kind (the strains share one, the rotation has its
    own, the stresses share one); magnitudes (``|alpha|``) run from zero.

    Parameters
    ----------
    signal : hyperspy.signals.Signal2D
        Shape (n | y, x); component names from ``metadata.Signal.components``
        (or ``names``) and units from ``metadata.Signal.quantity``.
    names : list of str, optional
        Component names (e.g. ``["e11", "e22", "e12", "theta"]``).
    percentile : float
        Percentile of ``|value|`` (per kind, inside the particle) giving the limits.
    cmap : str
        Diverging colour map of the signed components.
    per_row : int
        Panels per row.
    scalebar : bool
        Draw a scale bar in every panel.
    figsize : (float, float), optional
        Figure size (inch).
    fig : matplotlib.figure.Figure, optional
        Figure to draw into (cleared first).
    suptitle : str, optional
        Figure title; default the signal's title.
    **kwargs
        Other keywords of :func:`hyperspy.api.plot.plot_images` (e.g.
        ``axes_decor``, ``scalebar_color``, ``padding``); anything else raises
        ``TypeError``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import hyperspy.api as hs
    import matplotlib.pyplot as plt

    allowed = set(inspect.signature(hs.plot.plot_images).parameters) - _OWN - {"kwargs"}
    _check_kwargs(kwargs, allowed, "plot_component_maps")
    names, titles, units, kinds = component_labels(signal, names)
    data = np.asarray(signal.data, dtype=float).reshape((len(names),) + tuple(
        signal.axes_manager.signal_shape[::-1]))
    limits = {}
    for k in set(kinds):
        limits[k] = symmetric_limit(data[[i for i, kk in enumerate(kinds) if kk == k]],
                                    percentile)
    vmin = [0.0 if k.startswith("magnitude") else -limits[k] for k in kinds]
    vmax = [limits[k] for k in kinds]
    # a magnitude from light (zero) to dark: the black scale bar stays visible
    cmaps = ["magma_r" if k.startswith("magnitude") else cmap for k in kinds]
    images = [signal.inav[i] for i in range(len(names))] if len(names) > 1 else [signal]
    ny, nx = data.shape[1:]
    rows = int(np.ceil(len(names) / per_row))
    cols = min(per_row, len(names))
    if figsize is None:
        # each image ~2.6 inch wide beside its colour bar and labels
        figsize = (4.6 * cols, (2.6 * ny / max(nx, 1) + 1.1) * rows + 0.5)
    if fig is None:
        fig = plt.figure(figsize=figsize)
    else:
        fig.clear()
    opts = dict(axes_decor="all", scalebar_color="k", tight_layout=False)
    opts.update(kwargs)
    axes = hs.plot.plot_images(
        images, cmap=cmaps, per_row=per_row, label=titles, colorbar="multi",
        centre_colormap=False, scalebar="all" if scalebar else None, vmin=vmin,
        vmax=vmax, fig=fig, **opts)
    y_ax, x_ax = spatial_axes(signal)
    for ax, unit in zip(axes, units):
        im = ax.images[0]
        im.set_cmap(im.cmap.with_extremes(bad=(0, 0, 0, 0)))  # NaN: no data, transparent
        if im.colorbar is not None:
            im.colorbar.set_label(unit)
        ax.set_xlabel(f"x ({x_ax.units})")
        ax.set_ylabel(f"y ({y_ax.units})")
    fig.suptitle(signal.metadata.General.title if suptitle is None else suptitle)
    if "padding" not in kwargs:
        # room for the colour-bar labels between the panels
        fig.tight_layout(w_pad=6.0, h_pad=1.0)
    return fig


def nan_navigator(signal):
    """Navigator image of a collection: mean over each map's finite pixels.

    HyperSpy's default navigator sums the signal, which is NaN for maps with NaN
    outside the particle, leaving the navigator empty.
    """
    data = np.asarray(signal.data, dtype=float)
    nsig = signal.axes_manager.signal_dimension
    with np.errstate(all="ignore"):
        finite = np.isfinite(data)
        total = np.where(finite, data, 0.0).sum(axis=tuple(range(-nsig, 0)))
        count = finite.sum(axis=tuple(range(-nsig, 0)))
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    if mean.ndim not in (1, 2):
        return None            # HyperSpy's sliders instead of a navigator image
    from hyperspy.signals import Signal1D, Signal2D

    nav = (Signal1D if mean.ndim == 1 else Signal2D)(mean)
    for new, old in zip(nav.axes_manager.signal_axes, signal.axes_manager.navigation_axes):
        new.scale, new.offset, new.units, new.name = old.scale, old.offset, old.units, old.name
    return nav


def hyperspy_plot(signal, base_plot, navigator="auto", quantity=None, **kwargs):
    """HyperSpy's interactive plot with a navigator that works despite NaN.

    ``quantity`` labels the colour bar (or the y axis of a spectrum) when the
    signal's metadata has none; the metadata is left as it is. Returns the signal
    figure (``signal._plot.signal_plot.figure``).
    """
    if isinstance(navigator, str) and navigator == "auto" and \
            signal.axes_manager.navigation_dimension:
        navigator = nan_navigator(signal)
    label = None if signal.metadata.has_item("Signal.quantity") else quantity
    if kwargs.pop("spectrum", False):
        # a spectrum image: the navigator is the image, its scale bar black on white
        kwargs.setdefault("navigator_kwds", {"scalebar_color": "k"})
    else:
        kwargs.setdefault("scalebar_color", "k")   # HyperSpy's white bar vanishes on white
    base_plot(signal, navigator=navigator, **kwargs)
    sp = signal._plot.signal_plot
    if label:   # label the figure, not the user's metadata
        cb = getattr(sp, "_colorbar", None)
        if cb is not None:
            cb.set_label(label, rotation=-90, va="bottom")
        elif signal.axes_manager.signal_dimension == 1:
            sp.ax.set_ylabel(label)
    return sp.figure


def plot_law(law, ax=None, level=0.95, band=True, vegard=True, density=True,
             observed_range=True, figsize=None, title=None):
    """Figure of an :class:`EigenstrainLaw`; see its ``plot`` for the parameters."""
    import matplotlib.pyplot as plt

    law.validate()
    grid = law.axes_manager.signal_axes[0].axis
    data = np.atleast_2d(np.asarray(law.data, dtype=float))
    info = law._info()
    names = info["components"] if info else [f"component {i}" for i in range(len(data))]
    titles = {"e_100": "[100]", "e_001": "[001]", "e_shear": "shear"}
    if ax is None:
        fig, ax = plt.subplots(1, len(data), figsize=figsize or (4.4 * len(data), 3.6),
                               squeeze=False, layout="constrained")
        ax = ax[0]
    else:
        ax = np.atleast_1d(ax)
        if len(ax) != len(data):
            raise ValueError(f"ax must hold one Axes per component ({len(data)}), got {len(ax)}")
        fig = ax[0].figure
    half = law.band(level=level) if (band and info is not None and "covariance" in info) \
        else None
    slopes = law.vegard()["slopes"] if (vegard and info is not None) else None
    for i, a in enumerate(ax):
        a.plot(grid, data[i], color="C0", lw=2, label="learned law")
        if half is not None:
            a.fill_between(grid, data[i] - half[i], data[i] + half[i], color="C0", alpha=0.25,
                           label=f"{100 * level:g} % band")
        if info is not None and observed_range:
            lo, hi = info["x_range"]
            for span in ((0, lo), (hi, 1)):
                a.axvspan(*span, color="0.88", zorder=0)
            a.axvspan(0, 0, color="0.88", label="outside the observed X")
        if slopes is not None:
            a.plot(grid, slopes[i] * grid, "--", color="C3",
                   label=f"Vegard fit ({slopes[i]:.4f} per unit X)")
        hist = info.get("x_histogram") if (density and info is not None) else None
        if hist is not None:
            edges = np.linspace(0, 1, len(hist) + 1)
            a2 = a.twinx()
            a2.stairs(np.asarray(hist, float), edges, color="0.45", alpha=0.7, fill=True,
                      label="pixels per X bin")
            a2.set_ylim(0, 4 * max(float(np.max(hist)), 1.0))  # keep it in the bottom quarter
            a2.set_ylabel("pixels per X bin", color="0.45")
            a2.tick_params(axis="y", colors="0.45")
            a2.set_zorder(a.get_zorder() - 1)
            a.patch.set_visible(False)
        a.set_xlim(0, 1)
        a.set_xlabel("X (Li fraction)")
        a.set_ylabel("eps0(X) - eps0(0) (strain)")
        a.set_title(f"{titles.get(names[i], names[i])} component")
    ax[0].legend(fontsize="small", loc="best")
    fig.suptitle(law.metadata.General.title if title is None else title)
    return fig


def plot_dislocations(field, dislocations=None, smoothing=None, arrow_length=None,
                      figsize=None, ax=None, cmap="magma", percentile=99.5):
    """|alpha| (Nye magnitude) of a strain field with the cores and their Burgers vectors.

    Parameters as :meth:`StrainField.plot_dislocations`.
    """
    import matplotlib.pyplot as plt
    from matplotlib import patheffects

    if dislocations is None:
        dislocations = field.find_dislocations()
    d = np.asarray(dislocations)
    if d.dtype.names is None or not {"x", "y", "b_x", "b_y"} <= set(d.dtype.names):
        raise TypeError("dislocations must be the structured array of find_dislocations")
    rho = field.dislocation_density(smoothing=smoothing)
    mag = np.asarray(rho.data, dtype=float)[2]
    y_ax, x_ax = spatial_axes(field)
    ny, nx = mag.shape
    extent = (x_ax.offset - x_ax.scale / 2, x_ax.offset + (nx - 0.5) * x_ax.scale,
              y_ax.offset + (ny - 0.5) * y_ax.scale, y_ax.offset - y_ax.scale / 2)
    if ax is None:
        # the image ~6.3 inch wide beside its colour bar
        fig, ax = plt.subplots(figsize=figsize or (8.0, 6.3 * ny / max(nx, 1) + 1.1),
                               layout="constrained")
    else:
        fig = ax.figure
    vmax = symmetric_limit(mag, percentile)
    cm = plt.get_cmap(cmap).with_extremes(bad=(0, 0, 0, 0))
    im = ax.imshow(mag, cmap=cm, vmin=0, vmax=vmax, extent=extent, interpolation="nearest")
    cb = fig.colorbar(im, ax=ax, shrink=0.85)
    cb.set_label("|alpha| Nye magnitude (nm^-1)")
    from .._metadata import unit_nm

    f = unit_nm(field)   # positions are in nm; the axes in their own units
    if len(d):
        x, y = d["x"] / f, d["y"] / f
        b = np.column_stack([d["b_x"], d["b_y"]])
        bn = np.hypot(b[:, 0], b[:, 1])
        length = 12 * x_ax.scale if arrow_length is None else float(arrow_length)
        scale = length / np.median(bn) if np.median(bn) > 0 else 1.0
        ax.plot(x, y, "o", mfc="none", mec="c", ms=7, mew=1.5, label="core")
        ax.quiver(x, y, b[:, 0] * scale, b[:, 1] * scale, color="c", angles="xy",
                  scale_units="xy", scale=1, width=0.006, label="Burgers vector b (direction)")
        for xi, yi, bi in zip(x, y, bn):
            ax.annotate(f"|b| {bi:.2f} nm", (xi, yi), xytext=(7, -14),
                        textcoords="offset points", color="c", fontsize="small",
                        path_effects=[patheffects.withStroke(linewidth=2.5, foreground="k")])
        ax.legend(loc="lower right", fontsize="small", framealpha=0.8)
    ax.set_xlabel(f"x ({x_ax.units})")
    ax.set_ylabel(f"y ({y_ax.units})")
    ax.set_title(f"{len(d)} dislocation core(s) and Burgers vectors on |alpha|")
    add_scalebar(ax, nx * x_ax.scale, str(x_ax.units))
    return fig


def add_scalebar(ax, width, units):
    """A scale bar about a fifth of the field of view, rounded to 1, 2 or 5 x 10^n."""
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    target = width / 5.0
    exp = np.floor(np.log10(target))
    length = min((m * 10 ** exp for m in (1, 2, 5, 10)), key=lambda v: abs(v - target))
    label = f"{length:g} {units}"
    bar = AnchoredSizeBar(ax.transData, length, label, "lower left", pad=0.3, frameon=True,
                          size_vertical=0, color="k")
    # a pale box keeps the bar readable on dark and light images alike
    bar.patch.set(facecolor="white", alpha=0.7, edgecolor="none")
    ax.add_artist(bar)
    return bar
