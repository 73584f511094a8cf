"""Synthetic particles with known truth: composition, law, forward strain, defects, noise.

The forward strain comes from the mechanics engine (traction-free platelet,
plane stress by default), so a learning method that inverts it exactly recovers
the law; blur of the composition (the X-ray resolution), strain noise, a constant
reference strain and edge dislocations make it realistic.
"""

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from .._utils import with_one_blas_thread
from ..fields import dislocation_strain
from .composition_fields import composition_field
from .shapes import platelet_mask


def vegard_law(material_from="FePO4", material_to="LiFePO4", shear=False):
    """Vegard's law eps0(X) - eps0(0) in the crystal frame from two end members.

    Returns
    -------
    callable
        ``law(X) -> (n_components, *X.shape)`` for [100], [001] (and a zero shear).
    """
    from ..mechanics import vegard_misfit

    m = vegard_misfit(material_from, material_to)
    slopes = np.array([_misfit_component(m, "100"), _misfit_component(m, "001")])
    if shear:
        slopes = np.r_[slopes, 0.0]

    def law(X):
        X = np.asarray(X, dtype=float)
        return slopes.reshape((-1,) + (1,) * X.ndim) * X

    law.slopes = slopes
    return law


def _misfit_component(misfit, axis):
    """Read the [100] / [001] relative misfit from vegard_misfit's result."""
    if isinstance(misfit, dict):
        for key in (axis, f"[{axis}]", {"100": "a", "001": "c"}[axis]):
            if key in misfit:
                return float(misfit[key])
        raise KeyError(f"vegard_misfit gave no entry for [{axis}]: {list(misfit)}")
    misfit = np.asarray(misfit, dtype=float)
    return float(misfit[{"100": 0, "001": 2}[axis]])


def nonlinear_law(slopes=(0.052, -0.020), curvature=(0.012, -0.006)):
    """A law with clear curvature inside the miscibility gap.

    eps0_i(X) = s_i X + k_i * 4 X (1 - X) (X - 1/2) * 4: a cubic S-bend whose
    amplitude ``k_i`` sits between the end members, so the end points still
    follow Vegard but the path between them does not.
    """
    s = np.asarray(slopes, dtype=float)
    k = np.asarray(curvature, dtype=float)

    def law(X):
        X = np.asarray(X, dtype=float)
        shp = (-1,) + (1,) * X.ndim
        return s.reshape(shp) * X + k.reshape(shp) * 16.0 * X * (1 - X) * (X - 0.5)

    law.slopes = s
    return law


def crystal_to_image_eigenstrain(eps_crystal, crystal_angle):
    """(n_comp, ...) crystal-frame [100], [001] (, shear) -> (3, ...) image e11, e22, e12."""
    from ..mechanics import rotate_strain

    eps = np.asarray(eps_crystal, dtype=float)
    shear = eps[2] if eps.shape[0] > 2 else np.zeros_like(eps[0])
    return rotate_strain(np.stack([eps[0], eps[1], shear]), crystal_angle)


def blur_to_coarse_grid(X, mask, factor):
    """Simulate an X-ray map ``factor`` times coarser, brought back onto the fine grid.

    Block-averages X inside the particle on a grid ``factor`` times coarser, then
    interpolates bilinearly back to the fine pixel centres (what registration and
    resampling do with a real X-ray map). Pixels of the particle that the coarse
    map does not reach take the nearest coarse value, so the body is unchanged.
    """
    if factor <= 1:
        return X.copy()
    f = int(factor)
    ny, nx = X.shape
    cy, cx = -(-ny // f), -(-nx // f)
    pad = np.zeros((cy * f, cx * f))
    wpad = np.zeros_like(pad)
    pad[:ny, :nx] = np.where(mask, X, 0.0)
    wpad[:ny, :nx] = mask
    s = pad.reshape(cy, f, cx, f).sum(axis=(1, 3))
    w = wpad.reshape(cy, f, cx, f).sum(axis=(1, 3))
    coarse_valid = w > 0.25 * f * f
    coarse = np.where(coarse_valid, s / np.maximum(w, 1e-12), 0.0)
    # fine pixel centre i sits at coarse coordinate (i + 0.5)/f - 0.5
    yy = (np.arange(ny) + 0.5) / f - 0.5
    xx = (np.arange(nx) + 0.5) / f - 0.5
    coords = np.meshgrid(yy, xx, indexing="ij")
    num = ndimage.map_coordinates(coarse, coords, order=1, mode="nearest")
    den = ndimage.map_coordinates(coarse_valid.astype(float), coords, order=1, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        fine = np.where(den > 0.5, num / den, np.nan)
    missing = mask & ~np.isfinite(fine)
    if missing.any():
        idx = ndimage.distance_transform_edt(~np.isfinite(fine), return_distances=False,
                                             return_indices=True)
        fine = fine[tuple(idx)]
    return np.where(mask, np.clip(fine, 0.0, 1.0), np.nan)


@dataclass
class SyntheticParticle:
    """A synthetic particle and its observations, with the truth kept alongside.

    Attributes are plain arrays; :meth:`strain_field` and :meth:`composition_map`
    wrap them as the package's signals.
    """

    mask: np.ndarray                 #: (ny, nx) bool
    pixel_size: float                #: nm
    X_true: np.ndarray               #: (ny, nx) composition at the strain grid's resolution
    X_observed: np.ndarray           #: (ny, nx) composition as the X-ray map sees it
    law: object                      #: callable X -> (n_comp, ...) crystal-frame eps0 - eps0(0)
    crystal_angle: float             #: rad
    strain_clean: np.ndarray         #: (4, ny, nx) noise- and defect-free measured strain
    strain: np.ndarray               #: (4, ny, nx) what the 4D-STEM map gives
    reference: np.ndarray            #: (4,) constant reference strain and rotation offset
    dislocation_positions: np.ndarray  #: (n, 2) (y, x) px
    burgers: np.ndarray              #: (n, 2) (b_x, b_y) nm
    noise: float                     #: std of white strain noise
    blur_factor: int                 #: X-ray pixel / strain pixel
    settings: dict = field(default_factory=dict)
    strain_noise_free: np.ndarray = None  #: (4, ny, nx) clean + dislocations + reference

    def diffraction_patterns(self, detector_shape=(64, 64), dose=1e4, disk_radius=2.0,
                             seed=0, lazy=False, **kwargs):
        """4D-STEM patterns of this particle: kinematic disks from its local lattice.

        The lattice at each scan position is distorted by the particle's true
        displacement gradient (chemistry, coherency, dislocations and the reference
        offset, without the strain-map noise); Poisson noise at ``dose`` e-/pattern.

        Parameters
        ----------
        detector_shape : (int, int)
        dose : float
            Electrons per pattern.
        disk_radius : float
            Disk radius (detector px).
        seed : int
        lazy : bool
        **kwargs
            Passed to :func:`~hyperspy_chemomech.simulate.synthetic_4dstem`
            (``basis``, ``crystal_angle``, ``k_scale``, ...).

        Returns
        -------
        (signal, truth)
            The patterns (scan axes calibrated with this particle's pixel size)
            and the truth dict of :func:`~hyperspy_chemomech.simulate.synthetic_4dstem`.
        """
        from ..fields import gradient_from_components
        from .diffraction_patterns import synthetic_4dstem

        comps = np.where(self.mask, np.nan_to_num(self.strain_noise_free), 0.0)
        return synthetic_4dstem(scan_shape=self.mask.shape, detector_shape=detector_shape,
                                scan_step=self.pixel_size, disk_radius=disk_radius, dose=dose,
                                gradient=gradient_from_components(*comps), mask=self.mask,
                                seed=seed, lazy=lazy, **kwargs)

    def strain_field(self):
        """The observed strain as a :class:`~hyperspy_chemomech.signals.StrainField`."""
        from ..signals import StrainField

        s = StrainField.from_components(*self.strain, scale=self.pixel_size, units="nm")
        s.metadata.General.title = "Synthetic strain field"
        return s

    def composition_map(self, observed=True):
        """The composition (observed, i.e. blurred, by default) as a CompositionMap."""
        import hyperspy.api as hs

        from .._metadata import record, set_image_axes

        s = hs.signals.Signal2D(self.X_observed.copy() if observed else self.X_true.copy())
        s.set_signal_type("composition_map")
        set_image_axes(s, scale=self.pixel_size, units="nm")
        s.metadata.General.title = "Synthetic composition"
        if observed and self.blur_factor > 1:
            # what a registration onto the strain grid records
            record(s, "registration", source_pixel_size_nm=float(self.pixel_size * self.blur_factor))
        return s


def resolve_law(law):
    """A law argument as a callable: ``"vegard"``, ``"nonlinear"`` or a callable itself."""
    if isinstance(law, str) and law == "vegard":
        return vegard_law()
    if isinstance(law, str) and law == "nonlinear":
        return nonlinear_law()
    if not callable(law):
        raise ValueError("law must be 'vegard', 'nonlinear' or a callable")
    return law


# small BLAS work: one thread (spin-waiting BLAS threads: ~11x slower under load, #16)
@with_one_blas_thread
def make_particle(shape=(150, 250), pixel_size=5.0, kind="hexagon", composition="two_phase",
                  interface_width=6.0, law="vegard", material="LixFePO4",
                  stiffness=None, crystal_angle=0.0, plane="stress",
                  n_dislocations=0, burgers_nm=None, noise=0.0, blur_factor=1,
                  reference=(1e-3, -5e-4, 2e-4, 3e-3), seed=0, fill=0.85, mask=None,
                  composition_kwargs=None):
    """Build a synthetic particle with a known eigenstrain law.

    Parameters
    ----------
    shape : (int, int)
        Strain grid (ny, nx) in px.
    pixel_size : float
        Strain-grid pixel size (nm).
    kind : str
        Particle outline (see :func:`platelet_mask`).
    composition : str
        Composition field kind (see :func:`composition_field`).
    interface_width : float
        10-90 % width of phase boundaries (px).
    law : "vegard", "nonlinear" or callable
        Truth eps0(X) - eps0(0), crystal frame ([100], [001] (, shear)).
    material : str or pair
        The elastic body, as learning's ``material=`` reads it: ``"LixFePO4"``
        (default, the package's default material) is C(X) linear between FePO4
        (X = 0) and LiFePO4 (X = 1), as is a pair (X = 0 member, X = 1 member);
        a single material (e.g. ``"LiFePO4"``) is homogeneous.
    stiffness : {None, "homogeneous", "composition"}
        ``None`` (default): what ``material`` says. ``"homogeneous"``: the
        homogeneous C of a single ``material`` (a solid solution is refused: it
        has no one stiffness). ``"composition"``: C(X) linear between FePO4 and a
        single ``material`` (a solid solution's C(X) as it is).
    crystal_angle : float
        Angle from +x to [100] (rad).
    plane : {"stress", "strain"}
    n_dislocations : int
        Number of edge dislocations (lines along the beam) at random positions inside.
    burgers_nm : float, optional
        Burgers vector length (nm); default the [100] lattice parameter of LiFePO4.
    noise : float
        Standard deviation of white noise added to each strain component.
    blur_factor : int
        X-ray pixel size / strain pixel size (1 = composition at strain resolution).
    reference : (4,) floats
        Constant reference strain e11, e22, e12 and rotation offset added to the data.
    seed : int
    fill : float
        Fraction of the grid the particle spans.
    mask : array_like of bool, optional
        An explicit particle outline of ``shape`` (overrides ``kind`` and ``fill``).
    composition_kwargs : dict, optional
        Further arguments of :func:`composition_field` (``fraction``, ``x_low``,
        ``x_high``, ``domain_size``), e.g. a state of charge.

    Returns
    -------
    SyntheticParticle
    """
    from ..mechanics import ParticleElasticity, end_members

    rng = np.random.default_rng(seed)
    if mask is None:
        mask = platelet_mask(shape, kind=kind, fill=fill)
    else:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != tuple(shape):
            raise ValueError(f"mask shape {mask.shape} differs from shape {tuple(shape)}")
    X = composition_field(mask, kind=composition, interface_width=interface_width, seed=rng,
                          **(composition_kwargs or {}))
    law = resolve_law(law)

    if stiffness not in (None, "homogeneous", "composition"):
        raise ValueError(f"stiffness must be None, 'homogeneous' or 'composition', got "
                         f"{stiffness!r}")
    solid_solution = end_members(material) is not None
    if solid_solution and stiffness == "homogeneous":
        raise ValueError(f"stiffness='homogeneous' needs a single material, got the solid "
                         f"solution material={material!r} (C(X)); pass material='LiFePO4' "
                         "for the homogeneous LiFePO4 stiffness")
    Q = particle_stiffness(material, stiffness, plane)
    stiffness = "composition" if solid_solution or stiffness == "composition" else "homogeneous"
    solver = ParticleElasticity(mask, pixel_size=pixel_size, stiffness=Q, composition=X,
                                crystal_angle=crystal_angle)
    clean = forward_strain(solver, law, X, mask, crystal_angle)
    pos, bur, disl = place_dislocations(mask, n_dislocations, burgers_nm, pixel_size, rng)
    ref = np.asarray(reference, dtype=float)
    noise_free = np.where(mask, clean + disl + ref[:, None, None], np.nan)
    strain = np.where(mask, noise_free + noise * rng.standard_normal(clean.shape), np.nan)
    X_obs = blur_to_coarse_grid(X, mask, blur_factor)
    return SyntheticParticle(
        mask=mask, pixel_size=float(pixel_size), X_true=X, X_observed=X_obs, law=law,
        crystal_angle=float(crystal_angle), strain_clean=clean, strain=strain,
        reference=ref, dislocation_positions=pos, burgers=bur, noise=float(noise),
        blur_factor=int(blur_factor),
        settings=dict(material=material, stiffness=stiffness, plane=plane, kind=kind,
                      composition=composition, seed=seed),
        strain_noise_free=noise_free,
    )


def particle_stiffness(material="LixFePO4", stiffness=None, plane="stress"):
    """The plane stiffness :func:`make_particle` uses (a (3, 3) array or a C(X) pair / callable).

    ``material`` naming a solid solution (``"LixFePO4"``, the default) or a pair
    gives C(X) whatever ``stiffness`` says; otherwise ``None`` or
    ``"homogeneous"`` is C of ``material`` and ``"composition"`` C(X) linear
    between FePO4 and ``material``.
    """
    from ..mechanics import end_members, get_material, plane_stiffness, resolve_stiffness

    if end_members(material) is not None:      # a solid solution's name: C(X) already
        return resolve_stiffness(material, plane)
    if stiffness in (None, "homogeneous"):
        return plane_stiffness(get_material(material).stiffness, plane=plane)
    if stiffness == "composition":
        return (plane_stiffness(get_material("FePO4").stiffness, plane=plane),
                plane_stiffness(get_material(material).stiffness, plane=plane))
    raise ValueError(f"stiffness must be None, 'homogeneous' or 'composition', got {stiffness!r}")


def forward_strain(solver, law, X, mask, crystal_angle):
    """(4, ny, nx) strain and rotation of the law's eigenstrain at X, NaN outside ``mask``."""
    eig = crystal_to_image_eigenstrain(law(np.where(mask, X, 0.0)), crystal_angle)
    sol = solver.solve(eig)
    clean = np.concatenate([sol.strain, sol.rotation[None]], axis=0)
    return np.where(mask, clean, np.nan)


def place_dislocations(mask, n_dislocations, burgers_nm, pixel_size, rng):
    """Edge dislocations at random positions 8 px inside ``mask``, 12 px apart.

    Returns
    -------
    positions : (n, 2) (y, x) px
    burgers : (n, 2) (b_x, b_y) nm, random directions, length ``burgers_nm``
        (default the [100] lattice parameter of LiFePO4)
    strain : (4, ny, nx) array, or 0.0 when there are none
    """
    from ..mechanics import get_material

    if not n_dislocations:
        return np.zeros((0, 2)), np.zeros((0, 2)), 0.0
    shape = mask.shape
    if burgers_nm is None:
        burgers_nm = get_material("LiFePO4").lattice[0] / 10.0  # Å -> nm
    inner = ndimage.binary_erosion(mask, iterations=8)
    cand = np.argwhere(inner)
    pos = []
    for _ in range(1000 * int(n_dislocations)):   # bounded: a small particle cannot hold them
        if len(pos) == n_dislocations or not len(cand):
            break
        p = cand[rng.integers(len(cand))] + rng.uniform(-0.5, 0.5, 2)
        if all(np.hypot(*(p - q)) > 12 for q in pos):
            pos.append(p)
    if len(pos) < n_dislocations:
        raise ValueError(f"n_dislocations={n_dislocations} do not fit 12 px apart and 8 px "
                         f"inside a particle of shape {tuple(shape)}; use a larger shape or "
                         "fewer dislocations")
    pos = np.array(pos)
    ang = rng.uniform(0, 2 * np.pi, n_dislocations)
    bur = burgers_nm * np.column_stack([np.cos(ang), np.sin(ang)])
    return pos, bur, dislocation_strain(shape, pos, bur, pixel_size=pixel_size)
