"""EigenstrainLaw: the learned chemical expansion eps0(X) - eps0(0)."""

import numpy as np
from hyperspy._signals.lazy import LazySignal
from hyperspy._signals.signal1d import Signal1D

from .._metadata import METADATA_ROOT, record
from ..fields import LAW_COMPONENTS
from ._operations import CarriedArraysMixin

#: Crystal-frame components, in order, as stored along the navigation axis.
_LAW = f"{METADATA_ROOT}.law"


class EigenstrainLaw(CarriedArraysMixin, Signal1D):
    """Composition dependence of the eigenstrain, relative to X = 0.

    Data layout ``(component | X)``: for each crystal-frame component
    ([100], [001], then the shear if learned) the values of
    eps0(X) - eps0(0) (dimensionless) on a composition axis spanning 0..1.

    A law made by :meth:`StrainField.learn_eigenstrain` carries in
    ``metadata.Chemomech.law`` its basis and coefficients (so :meth:`evaluate` is
    exact, not interpolated), their covariance, the 95 % band, the observed
    composition range (outside it the law is an extrapolation), the Vegard fit and
    the linearity test, the method and its settings.

    Strains are relative to the lattice of the strain map's reference region (of
    unknown composition); see :meth:`relative_to_end_member`.
    """

    def _carried_arrays(self):
        # eps0 is intensive (rebin: the mean); the 95 % band lies on the same grid
        return [(f"{_LAW}.band95", (0, 1), "mean")]


    _signal_type = "eigenstrain_law"
    _signal_dimension = 1

    # -- construction ---------------------------------------------------------
    @classmethod
    def from_fit(cls, fit, n_points=101):
        """Wrap a :class:`~hyperspy_chemomech.learning.LawFit` as a signal."""
        grid = np.linspace(0.0, 1.0, n_points)
        s = cls(fit.evaluate(grid))
        s.axes_manager.navigation_axes[0].name = "component"
        ax = s.axes_manager.signal_axes[0]
        ax.name, ax.units, ax.scale, ax.offset = "X", "", 1.0 / (n_points - 1), 0.0
        s.metadata.General.title = "Eigenstrain law"
        s.metadata.Signal.quantity = "eps0(X) - eps0(0)"
        band = fit.band(grid)
        law = {
            "components": list(LAW_COMPONENTS[: fit.n_components]),
            "basis": fit.basis.kind,
            "degree": int(fit.basis.degree),
            "coefficients": np.asarray(fit.coefficients),
            "covariance": np.asarray(fit.covariance),
            "dof": int(fit.dof),
            "band95": band,
            "x_range": np.asarray(fit.x_range),
            "reference_strain": np.asarray(fit.reference),
            "resolution_sigma_px": float(fit.sigma_px),
            "resolution_source": fit.sigma_source,
            "noise": np.asarray(fit.noise),
            "condition_number": float(fit.condition),
            "method": fit.method,
            "lattice_reference": "strain map reference lattice",
            "vegard": {k: ({n: np.asarray(u) for n, u in v.items()} if isinstance(v, dict) else
                           np.asarray(v) if not np.isscalar(v) else v)
                       for k, v in fit.vegard.items()},
            "linearity": dict(fit.linearity),
            "settings": {k: v for k, v in fit.settings.items()},
        }
        # which error sources entered the band (composition, registration: see learn_law)
        law["errors"] = dict(fit.errors) if fit.errors else {
            "band_sources": ["strain (cluster jackknife)"]
            + (["resolution"] if fit.sigma_sd_px > 0 else []), "sources": []}
        if fit.dislocations is not None:   # the cores fitted as nuisance terms
            law["dislocations"] = {
                "positions_px": np.asarray(fit.dislocations.get("positions_px"), float).reshape(-1, 2),
                "burgers_nm": np.asarray(fit.dislocations.get("burgers_nm"), float).reshape(-1, 2),
                "n_cores": int(np.asarray(fit.dislocations.get("positions_px")).reshape(-1, 2).shape[0])}
        if fit.body is not None:           # how the body was completed
            law["body"] = {k: (np.asarray(v) if isinstance(v, np.ndarray) else v)
                           for k, v in fit.body.items()}
        if fit.x_histogram is not None:
            law["x_histogram"] = np.asarray(fit.x_histogram)
        sel = {k: (np.asarray(v) if isinstance(v, (list, tuple, np.ndarray)) else v)
               for k, v in fit.selection.items()}
        law["selection"] = sel
        s.metadata.set_item(_LAW, law)
        record(s, "law")  # the package version, as for every recorded step
        return s

    # -- checks and access ------------------------------------------------------
    def validate(self):
        """Check the ``(component | X)`` layout with X inside [0, 1]; raise ``ValueError``."""
        nav = self.axes_manager.navigation_shape
        if len(nav) > 1 or (nav and not 2 <= nav[0] <= 3):
            raise ValueError(
                "EigenstrainLaw needs 2 or 3 components ([100], [001] [, shear]) "
                f"along its navigation axis; got navigation shape {nav}"
            )
        x = self.axes_manager.signal_axes[0].axis
        if x.min() < -1e-12 or x.max() > 1 + 1e-12:
            raise ValueError(f"composition axis must lie in [0, 1], spans [{x.min()}, {x.max()}]")
        return self

    def _info(self, key=None):
        if not self.metadata.has_item(_LAW):
            if key is None:
                return None
            raise ValueError(
                "this EigenstrainLaw carries no fit information (metadata.Chemomech.law); "
                "make it with StrainField.learn_eigenstrain"
            )
        info = self.metadata.get_item(_LAW).as_dictionary()
        return info if key is None else info[key]

    @property
    def basis(self):
        """The :class:`~hyperspy_chemomech.learning.LawBasis` of the fit."""
        from ..learning import LawBasis

        info = self._info("basis")
        return LawBasis(info, int(self._info("degree")))

    @property
    def x_range(self):
        """Observed composition range (0.5 and 99.5 % quantiles inside the particle)."""
        return tuple(float(v) for v in self._info("x_range"))

    def evaluate(self, X, extrapolate=True):
        """eps0(X) - eps0(0) per component.

        Parameters
        ----------
        X : array_like
            Compositions in [0, 1].
        extrapolate : bool
            If False, values outside the observed composition range are NaN.

        Returns
        -------
        numpy.ndarray, shape (n_components, X.size)
            Dimensionless eigenstrain differences, crystal frame.
        """
        self.validate()
        X = np.atleast_1d(np.asarray(X, dtype=float)).ravel()
        finite = np.isfinite(X)
        if np.any((X[finite] < 0) | (X[finite] > 1)):
            raise ValueError("X must lie in [0, 1]")
        info = self._info()
        if info is not None and "coefficients" in info:
            from ..learning import law_values

            out = law_values(info["coefficients"], self.basis, X) * self._scale_factors()[:, None]
        else:
            grid = self.axes_manager.signal_axes[0].axis
            data = np.atleast_2d(np.asarray(self.data))
            out = np.stack([np.interp(X, grid, row) for row in data])
        out[:, ~finite] = np.nan
        if not extrapolate and info is not None:
            lo, hi = info["x_range"]
            out[:, (X < lo) | (X > hi)] = np.nan
        return out

    def _scale_factors(self):
        info = self._info()
        n = np.atleast_2d(np.asarray(self.data)).shape[0]
        if info is None or "end_member_scale" not in info:
            return np.ones(n)
        return np.asarray(info["end_member_scale"], dtype=float)

    def vegard(self):
        """Vegard's law test: slopes with 95 % intervals and a linearity test.

        Returns
        -------
        dict
            ``slopes`` (per unit X, per component), ``ci95`` (n_comp, 2),
            ``stderr``, ``linearity_p_value`` (Wald test of the nonlinear
            coefficients of the best nonlinear fit, cluster-robust; small means
            Vegard is rejected), ``vegard_rejected`` (at 5 %), the lattice
            the strains are relative to, ``error_sources`` (what entered the
            intervals) and, where composition errors were propagated,
            ``stderr_by_source`` (standard error of the slopes from each source
            alone), ``slopes_uncorrected`` and ``stderr_uncorrected`` (before the
            attenuation correction).
        """
        info = self._info("vegard")
        lin = self._info("linearity")
        scale = self._scale_factors()
        slopes = np.asarray(info["slopes"], float) * scale
        out = {
            "components": list(self._info("components")),
            "slopes": slopes,
            "stderr": np.asarray(info["stderr"], float) * scale,
            "ci95": np.asarray(info["ci95"], float) * scale[:, None],
            "linearity_p_value": float(lin.get("p_value", np.nan)) if lin.get("tested") else np.nan,
            "vegard_rejected": bool(lin.get("reject_linear_at_5pct", False)),
            "lattice_reference": self._info("lattice_reference"),
        }
        # the share of each error source, where composition errors were propagated
        if "stderr_by_source" in info:
            out["stderr_by_source"] = {k: np.asarray(v, float) * scale
                                       for k, v in dict(info["stderr_by_source"]).items()}
            out["slopes_uncorrected"] = np.asarray(info["slopes_uncorrected"], float) * scale
            out["stderr_uncorrected"] = np.asarray(info["stderr_uncorrected"], float) * scale
        out["error_sources"] = list(self._info().get("errors", {}).get("band_sources", []))
        return out

    def band(self, X=None, level=0.95):
        """Half-width of the pointwise confidence band of the law.

        Parameters
        ----------
        X : array_like, optional
            Compositions; default the signal's X grid.
        level : float
            Coverage (0.95: the 95 % band).

        Returns
        -------
        numpy.ndarray, shape (n_comp, len(X))
            Half-widths (dimensionless), in the same lattice reference as the law.
        """
        from ..learning import law_band

        info = self._info()
        if info is None or "covariance" not in info:
            raise ValueError("this EigenstrainLaw carries no covariance (metadata.Chemomech.law); "
                             "make it with StrainField.learn_eigenstrain")
        if X is None:
            X = self.axes_manager.signal_axes[0].axis
        X = np.atleast_1d(np.asarray(X, dtype=float)).ravel()
        finite = np.isfinite(X)
        if np.any((X[finite] < 0) | (X[finite] > 1)):
            raise ValueError("X must lie in [0, 1]")
        if not 0 < float(level) < 1:
            raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
        half = law_band(info["covariance"], self.basis, info["dof"], X, level)
        half[:, ~finite] = np.nan
        return half * self._scale_factors()[:, None]

    def relative_to_end_member(self, reference_composition):
        """Convert strains from the strain map's reference lattice to the X = 0 end member.

        4D-STEM strain is relative to a reference region of composition X_ref, so
        eps = (a - a_ref)/a_ref. Relative to the X = 0 lattice a_0 the law is
        rescaled by a_ref/a_0 = 1 + eps0(X_ref) - eps0(0), component by component.

        Parameters
        ----------
        reference_composition : float
            X of the strain map's reference region.

        Returns
        -------
        EigenstrainLaw
            A new law; the data here is unchanged.
        """
        xr = float(reference_composition)
        if not 0 <= xr <= 1:
            raise ValueError(f"reference_composition must lie in [0, 1], got {xr}")
        if self._info("lattice_reference") != "strain map reference lattice":
            raise ValueError("this law is already relative to an end member")
        factor = 1.0 + self.evaluate([xr])[:, 0]
        new = self.deepcopy()
        new.data = np.asarray(new.data) * factor[:, None]
        new.metadata.set_item(f"{_LAW}.end_member_scale", factor)
        new.metadata.set_item(f"{_LAW}.lattice_reference",
                              f"X = 0 end member (reference region at X = {xr:g})")
        return new

    def plot(self, ax=None, level=0.95, band=True, vegard=True, density=True,
             observed_range=True, figsize=None, title=None):
        """Plot the law per component: curve, confidence band, data density, Vegard line.

        This replaces HyperSpy's ``Signal1D.plot`` (whose navigator and other
        keywords do not apply: every component is drawn at once); an unknown
        keyword raises ``TypeError``. HyperSpy's view stays available as
        ``hyperspy.signals.Signal1D.plot(law)``.

        Parameters
        ----------
        ax : sequence of matplotlib Axes, optional
            One per component; a new figure otherwise.
        level : float
            Coverage of the pointwise confidence band (0.95: 95 %).
        band : bool
            Draw the band (needs the fit's covariance).
        vegard : bool
            Draw the Vegard (linear) fit, slope in the legend (per unit X).
        density : bool
            Draw the histogram of X over the particle pixels (right axis, counts).
        observed_range : bool
            Grey out X outside the observed range (extrapolation there).
        figsize : (float, float), optional
            Figure size (inch).
        title : str, optional
            Figure title; default the law's title.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from ._plotting import plot_law

        return plot_law(self, ax=ax, level=level, band=band, vegard=vegard, density=density,
                        observed_range=observed_range, figsize=figsize, title=title)


class LazyEigenstrainLaw(LazySignal, EigenstrainLaw):
    """Lazy (dask) version of :class:`EigenstrainLaw`."""

    _lazy = True
    rebin = CarriedArraysMixin.rebin   # the mean, not LazySignal's sum
