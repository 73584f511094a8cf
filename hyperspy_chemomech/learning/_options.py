"""The options of :func:`~hyperspy_chemomech.learning.learn_law`, grouped by what they set.

Small frozen dataclasses: each checks its values when made (a clear error
naming the option), so a fit fails before any mechanics is solved.
"""

from dataclasses import dataclass, field

from ._bases import BASES, LawBasis

METHODS = ("strain_gap", "equilibrium_gap")


@dataclass(frozen=True)
class BasisOptions:
    """The law's basis and degree.

    Attributes
    ----------
    kind : {"legendre", "bspline", "linear"}
    degree : "auto" or int
        ``"auto"``: chosen among 1..``max_degree`` (a nested basis only).
    max_degree : int
    shear : bool
        Learn the crystal-frame tensor shear as a third component.
    monotonic : bool
        Monotonic components (B-spline with a given degree only).
    """

    kind: str = "legendre"
    degree: object = "auto"
    max_degree: int = 6
    shear: bool = False
    monotonic: bool = False

    def __post_init__(self):
        if self.kind not in BASES:
            raise ValueError(f"unknown basis {self.kind!r}; use one of {', '.join(BASES)}")
        if self.monotonic and (self.kind != "bspline" or self.degree == "auto"):
            raise ValueError("monotonic=True needs basis='bspline' with an integer degree "
                             "(a monotonic B-spline is a bound on its coefficient increments)")
        if self.kind == "bspline" and len(self.degrees) > 1:
            # B-spline families are not nested: each degree would need its own responses.
            raise ValueError("degree='auto' needs a nested basis; use basis='legendre' or give "
                             "a degree")

    @property
    def n_components(self):
        """Crystal-frame components of the law: [100], [001] (and the shear)."""
        return 3 if self.shear else 2

    @property
    def degrees(self):
        """Candidate degrees (one when the degree is given)."""
        if self.degree != "auto":
            return [int(self.degree)]
        return [1] if self.kind == "linear" else list(range(1, int(self.max_degree) + 1))

    @property
    def d_max(self):
        """Degree of the responses computed: legendre always includes 2 (linearity test)."""
        return max(max(self.degrees), 2 if self.kind == "legendre" else 1)

    def full_basis(self):
        """The basis at ``d_max``, whose first d functions are the basis of degree d."""
        return LawBasis(self.kind, self.d_max)


@dataclass(frozen=True)
class ResolutionOptions:
    """What is known of the composition map's resolution (see ``learn_law``).

    Attributes
    ----------
    composition_resolution : float, optional
        FWHM (nm) of the composition's point-spread function: given, not estimated.
    source_pixel_size : float, optional
        X-ray pixel size (nm): a lower bound for the estimate.
    sigma_grid : tuple of float, optional
        Candidate PSF sigmas (strain px) for the estimate.
    """

    composition_resolution: float = None
    source_pixel_size: float = None
    sigma_grid: tuple = None

    def __post_init__(self):
        if self.sigma_grid is not None:
            object.__setattr__(self, "sigma_grid", tuple(float(v) for v in self.sigma_grid))


@dataclass(frozen=True)
class SelectionOptions:
    """Choice of the degree (and, with it, an unknown resolution).

    Attributes
    ----------
    criterion : {"cv", "bic"}
        Spatially blocked cross-validation or BIC.
    n_folds : int
    seed : int
        Seed of the fold assignment and of the resolution's bootstrap.
    """

    criterion: str = "cv"
    n_folds: int = 5
    seed: int = 0

    def __post_init__(self):
        if self.criterion not in ("cv", "bic"):
            raise ValueError(f"selection must be 'cv' or 'bic', got {self.criterion!r}")


@dataclass(frozen=True)
class BodyOptions:
    """The mechanical body and its boundary.

    Attributes
    ----------
    boundary : {"free", "dirichlet"}
    extend_body : bool or float
        Take in strain-finite pixels within 8 px (or this many px) of the composition.
    min_range : float
        Smallest 5-95 % spread of X accepted as identifiable.
    """

    boundary: str = "free"
    extend_body: object = True
    min_range: float = 0.1

    def __post_init__(self):
        if self.boundary not in ("free", "dirichlet"):
            raise ValueError(f"boundary must be 'free' or 'dirichlet', got {self.boundary!r}")

    @property
    def reach_px(self):
        """How far (px) the body may grow beyond the composition's support."""
        return 8.0 if isinstance(self.extend_body, bool) else self.extend_body


@dataclass(frozen=True)
class NuisanceOptions:
    """Fields fitted alongside the law so that they do not leak into it.

    Attributes
    ----------
    dislocations : {"fit", "ignore"}
    """

    dislocations: str = "fit"

    def __post_init__(self):
        if self.dislocations not in ("fit", "ignore"):
            raise ValueError(f"dislocations must be 'fit' or 'ignore', got {self.dislocations!r}")


@dataclass(frozen=True)
class UncertaintyOptions:
    """Covariance of the coefficients.

    Attributes
    ----------
    method : {"jackknife", "bootstrap"}
        Over spatial blocks (clusters).
    block_size : int, optional
        Side (px) of the spatial blocks; default a quarter of the particle.
    """

    method: str = "jackknife"
    block_size: int = None

    def __post_init__(self):
        if self.method not in ("jackknife", "bootstrap"):
            raise ValueError(f"uncertainty must be 'jackknife' or 'bootstrap', got {self.method!r}")


@dataclass(frozen=True)
class LearnOptions:
    """All options of a fit.

    Attributes
    ----------
    method : {"strain_gap", "equilibrium_gap"}
    use_rotation : bool
        Fit the lattice rotation with the strain.
    basis, resolution, selection, body, nuisance, uncertainty
        The groups above.
    """

    method: str = "strain_gap"
    use_rotation: bool = True
    basis: BasisOptions = field(default_factory=BasisOptions)
    resolution: ResolutionOptions = field(default_factory=ResolutionOptions)
    selection: SelectionOptions = field(default_factory=SelectionOptions)
    body: BodyOptions = field(default_factory=BodyOptions)
    nuisance: NuisanceOptions = field(default_factory=NuisanceOptions)
    uncertainty: UncertaintyOptions = field(default_factory=UncertaintyOptions)

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; use one of {', '.join(METHODS)}")

    @property
    def components(self):
        """Data components fitted: e11, e22, e12 (and theta)."""
        return [0, 1, 2, 3] if self.use_rotation else [0, 1, 2]

    @property
    def solver_boundary(self):
        """Boundary condition of the solver (the equilibrium gap holds its own edge)."""
        held = self.body.boundary == "dirichlet" and self.method == "strain_gap"
        return "dirichlet" if held else "free"
