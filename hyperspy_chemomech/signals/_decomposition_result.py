"""The result of :meth:`StrainField.decompose`: parts as signals, summary and overview plot."""

import numpy as np

from .._metadata import spatial_axes
from ..fields import COMPONENTS, STRESS_COMPONENTS

PARTS = ("chemical", "coherency", "residual")
_LABELS = {"e11": "e11", "e22": "e22", "e12": "e12", "theta": "theta (rad)"}


def image_like(template, data, cls=None, title=None, components=None):
    """A new (n | y, x) signal with the image calibration of ``template``.

    Parameters
    ----------
    template : hyperspy Signal2D-like
        Signal whose (y, x) axes (scale, offset, units, names) are copied.
    data : numpy.ndarray or dask.array.Array, shape (n, ny, nx) or (ny, nx)
    cls : type, optional
        Signal class (default ``Signal2D``, or ``LazySignal2D`` for dask data).
    """
    if cls is None:
        if isinstance(data, np.ndarray):
            from hyperspy.signals import Signal2D as cls
        else:   # a dask array
            from hyperspy.signals import LazySignal2D as cls
    s = cls(data)
    for new, old in zip(spatial_axes(s), spatial_axes(template)):
        new.scale, new.offset, new.units, new.name = old.scale, old.offset, old.units, old.name
    if s.axes_manager.navigation_dimension:
        s.axes_manager.navigation_axes[0].name = "component"
    if title is not None:
        s.metadata.General.title = title
    if components is not None:
        s.metadata.set_item("Signal.components", list(components))
    return s


class DecompositionResult:
    """Reference, chemical, coherency and residual strain of one particle, and its stress.

    ``measured = reference + chemical + coherency + residual`` pixel by pixel (to
    round-off) for e11, e22, e12 and theta; NaN outside the particle.

    Attributes
    ----------
    measured : StrainField
        The input strain field.
    chemical : StrainField
        eps0(X(r)) in the image frame (the stress-free chemical expansion), theta = 0.
    coherency : StrainField
        Elastic strain S[eps0(X)] - eps0(X) and the misfit-induced lattice rotation.
    residual : StrainField
        measured - reference - S[eps0(X)]: what the chemistry does not explain.
    residual_matched : StrainField or None
        The residual at the composition map's resolution (the measured strain blurred
        with the law's resolution-matching Gaussian), when that resolution is not sharp.
    reference : numpy.ndarray, shape (4,)
        Constant e11, e22, e12, theta (rad) of the strain map's reference lattice.
    stress : hyperspy.signals.Signal2D
        (3 | y, x): sigma_11, sigma_22, sigma_12 in GPa (image frame) of the coherency
        strain, from the material's stiffness.
    mask : numpy.ndarray of bool, shape (ny, nx)
        The particle.
    settings : dict
        What the decomposition used (material, plane, crystal angle, reference source...).
    """

    def __init__(self, measured, chemical, coherency, residual, reference, stress, mask,
                 residual_matched=None, settings=None):
        self.measured = measured
        self.chemical = chemical
        self.coherency = coherency
        self.residual = residual
        self.residual_matched = residual_matched
        self.reference = np.asarray(reference, dtype=float)
        self.stress = stress
        self.mask = mask
        self.settings = dict(settings or {})

    def __repr__(self):
        ny, nx = self.mask.shape
        return (f"<DecompositionResult: {ny} x {nx} px, {int(self.mask.sum())} px in the "
                f"particle, parts chemical/coherency/residual, stress in GPa>")

    def _parts(self):
        out = {name: np.asarray(getattr(self, name).data, dtype=float) for name in PARTS}
        if self.residual_matched is not None:
            out["residual_matched"] = np.asarray(self.residual_matched.data, dtype=float)
        return out

    def summary(self):
        """RMS of each part inside the particle, and the share of the measured variance.

        The share of part p in component c is ``cov(p, m) / var(m)`` over the particle
        pixels with finite data, m the measured map; since the parts and the
        constant reference add up to m, the shares of chemical, coherency and
        residual add up to 1 (a part anti-correlated with the data has a negative
        share).

        Returns
        -------
        dict
            ``components`` (e11, e22, e12, theta), ``reference`` (4,), ``rms``
            (dict part -> (4,) array, dimensionless / rad, incl. ``measured``) and
            ``variance_fraction`` (dict part -> (4,) array); printing it shows a table.
        """

        m = np.asarray(self.measured.data, dtype=float)[:, self.mask]
        parts = {k: v[:, self.mask] for k, v in self._parts().items()}
        valid = np.isfinite(m) & np.isfinite(parts["residual"])
        rms, share = {}, {}

        def _rms(a):
            return np.array([np.sqrt(np.mean(a[c][valid[c]] ** 2)) if valid[c].any() else np.nan
                             for c in range(4)])

        rms["measured"] = _rms(m - self.reference[:, None])
        for k, v in parts.items():
            rms[k] = _rms(v)
            if k == "residual_matched":
                continue
            frac = np.full(4, np.nan)
            for c in range(4):
                mc, pc = m[c][valid[c]], v[c][valid[c]]
                var = np.var(mc)
                if mc.size > 1 and var > 0:
                    frac[c] = np.mean((pc - pc.mean()) * (mc - mc.mean())) / var
            share[k] = frac
        return _Summary(components=list(COMPONENTS), reference=self.reference.copy(), rms=rms,
                        variance_fraction=share)

    def plot(self, parts=("measured", "chemical", "coherency", "residual"), percentile=99.0,
             scalebar=True, cmap="RdBu_r", figsize=None):
        """One overview figure: parts (rows) x components (columns).

        Colour limits are shared along each column (symmetric, the ``percentile`` of
        ``|value|`` over all parts shown; the measured map has its reference removed so
        that it compares with the parts).

        Parameters
        ----------
        parts : sequence of str
            Rows, from "measured", "chemical", "coherency", "residual",
            "residual_matched", "stress".
        percentile : float
            Percentile of ``|value|`` used for the colour limits.
        scalebar : bool
            Draw a scale bar (calibrated units) in the first panel.
        cmap : str
        figsize : (float, float), optional

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt

        from ._plotting import add_scalebar

        maps = {"measured": np.asarray(self.measured.data, float) - self.reference[:, None, None]}
        maps.update(self._parts())
        if "stress" in parts:
            maps["stress"] = np.concatenate([np.asarray(self.stress.data, float),
                                             np.full((1,) + self.mask.shape, np.nan)])
        unknown = [p for p in parts if p not in maps]
        if unknown:
            raise ValueError(f"unknown or unavailable part(s) {unknown}; choose from {sorted(maps)}")
        strain_rows = [p for p in parts if p != "stress"]
        lim = []
        for c in range(4):
            vals = np.concatenate([np.abs(maps[p][c][self.mask]) for p in strain_rows]) \
                if strain_rows else np.array([np.nan])
            vals = vals[np.isfinite(vals)]
            lim.append(float(np.percentile(vals, percentile)) if vals.size else 1.0)
        slim = None
        if "stress" in parts:
            sv = np.abs(maps["stress"][:3][:, self.mask])
            slim = [float(np.nanpercentile(v, percentile)) for v in sv]
        y_ax, x_ax = spatial_axes(self.measured)
        ny, nx = self.mask.shape
        extent = (x_ax.offset - x_ax.scale / 2, x_ax.offset + (nx - 0.5) * x_ax.scale,
                  y_ax.offset + (ny - 0.5) * y_ax.scale, y_ax.offset - y_ax.scale / 2)
        if figsize is None:
            figsize = (3.2 * 4, 2.6 * len(parts) * ny / max(nx, 1) + 0.8 * len(parts))
        fig, axes = plt.subplots(len(parts), 4, figsize=figsize, squeeze=False,
                                 sharex=True, sharey=True, layout="constrained")
        for r, p in enumerate(parts):
            for c in range(4):
                ax = axes[r, c]
                if p == "stress":
                    if c == 3:
                        ax.set_axis_off()
                        continue
                    v = slim[c] or 1.0
                    title = f"{STRESS_COMPONENTS[c]} (GPa)"
                else:
                    v = lim[c] or 1.0
                    title = _LABELS[COMPONENTS[c]]
                im = ax.imshow(maps[p][c], cmap=cmap, vmin=-v, vmax=v, extent=extent,
                               interpolation="nearest")
                if r == 0 or p == "stress":
                    ax.set_title(title, fontsize="small")
                if c == 0:
                    ax.set_ylabel(p.replace("_", " "))
                ax.set_xticks([])
                ax.set_yticks([])
                if r == len(parts) - 1 or p == "stress" or (r + 1 < len(parts)
                                                           and parts[r + 1] == "stress"):
                    cb = fig.colorbar(im, ax=ax, orientation="horizontal", fraction=0.05,
                                      pad=0.04)
                    cb.set_label("stress (GPa)" if p == "stress" else
                                 "rotation (rad)" if c == 3 else "strain")
        if scalebar:
            add_scalebar(axes[0, 0], nx * x_ax.scale, str(x_ax.units))
        fig.suptitle(self.measured.metadata.General.title + ": decomposition", fontsize="medium")
        return fig


    def plot_stress(self, percentile=99.0, cmap="RdBu_r", per_row=3, **kwargs):
        """The coherency stress: sigma_11, sigma_22, sigma_12 panels in GPa.

        One symmetric colour scale for the three (centred on zero), axes in nm,
        scale bars, NaN transparent; keywords as
        :func:`~hyperspy_chemomech.signals.plot_component_maps`.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ._plotting import plot_component_maps

        return plot_component_maps(self.stress, names=list(STRESS_COMPONENTS),
                                   percentile=percentile, cmap=cmap, per_row=per_row, **kwargs)


class _Summary(dict):
    """A dict that prints as a table."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)

    def __str__(self):
        comps = self["components"]
        lines = ["part              " + "".join(f"{c:>12s}" for c in comps),
                 "reference         " + "".join(f"{v:12.3e}" for v in self["reference"]),
                 "RMS in the particle"]
        for k, v in self["rms"].items():
            lines.append(f"  {k:16s}" + "".join(f"{x:12.3e}" for x in v))
        lines.append("share of the measured variance")
        for k, v in self["variance_fraction"].items():
            lines.append(f"  {k:16s}" + "".join(f"{x:12.3f}" for x in v))
        return "\n".join(lines)
