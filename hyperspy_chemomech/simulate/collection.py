"""Collections of synthetic particles and operando series, with one known law.

:func:`particle_collection` makes N particles that differ the way a battery
electrode's do (outline, size, grid and pixel size, in-plane crystal orientation,
composition pattern, state of charge, reference strain, dislocations) but share
one eigenstrain law, optionally with a few members that follow another one.
:func:`operando_series` follows one particle (a fixed body) through a charge: a
phase boundary sweeps it over T frames, with optional drift between frames.

The physics is :func:`~hyperspy_chemomech.simulate.make_particle`'s (the
package's finite elements, traction-free edges, plane stress, C(X) of LixFePO4 by
default); the composition is what the X-ray map gives on the strain grid:
``blur_factor`` times coarser (block mean), bilinearly brought back, noise-free.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .composition_fields import _smooth_random, _tanh_profile
from .particle import (
    blur_to_coarse_grid,
    forward_strain,
    make_particle,
    particle_stiffness,
    place_dislocations,
    resolve_law,
)

PATTERNS = ("two_phase", "core_shell", "stripes", "smooth")
OUTLINES = ("hexagon", "diamond", "ellipse")
_FRAME_SOURCE = "simulate (truth)"


def scaled_law(law, factor):
    """The law ``factor`` times steeper: ``factor * law(X)`` (``.slopes`` scaled too)."""
    law = resolve_law(law)
    factor = float(factor)

    def odd(X):
        return factor * law(X)

    odd.slopes = factor * np.asarray(law.slopes, dtype=float)
    return odd


def _strain_signal(particle, title):
    """The particle's StrainField with its (true) crystal frame stored."""
    from .._metadata import set_frame

    s = particle.strain_field()
    set_frame(s, particle.crystal_angle, _FRAME_SOURCE)
    s.metadata.General.title = title
    return s


def _composition_signal(particle, title):
    c = particle.composition_map()
    c.metadata.General.title = title
    return c


class _Members(Sequence):
    """A read-only sequence of a collection's signals, each made when it is asked for.

    Nothing is kept but the last member made (asking for the strain and then the
    composition of one member makes it once), so iterating over the members never
    holds more than one in memory.
    """

    def __init__(self, collection, what):
        self._collection, self._what = collection, what

    def __len__(self):
        return self._collection.n_members

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        i = int(i)
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"member {i} out of range for a collection of {n}")
        return self._collection.member_signals(i % n)[0 if self._what == "strain" else 1]

    def __repr__(self):
        return f"<{len(self)} lazily made {self._what} signals>"


@dataclass
class ParticleCollection:
    """What :func:`particle_collection` makes: the members' signals and the truth.

    Attributes
    ----------
    strains, compositions : list or sequence
        One :class:`~hyperspy_chemomech.signals.StrainField` (crystal frame in
        ``metadata.Chemomech.frame``) and one CompositionMap (on that strain grid,
        the X-ray pixel size recorded) per member. With ``lazy=True`` they are
        sequences that make each member when it is indexed (one at a time).
    particles : list of SyntheticParticle or None
        The members' full truth (``None`` when lazy; :meth:`member` makes one).
    law : callable
        The shared truth eps0(X) - eps0(0), crystal frame ([100], [001]); ``law.slopes``.
    odd_law : callable or None
        The law the odd members follow.
    odd : numpy.ndarray of int
        Indices of the members that follow ``odd_law`` (sorted).
    params : list of dict
        Per member: grid ``shape``, ``pixel_size`` (nm), ``outline``, ``pattern``,
        ``state_of_charge`` (requested Li-rich fraction), ``crystal_angle`` (rad),
        ``reference`` (4,), ``odd`` (bool), ``seed``.
    """

    strains: object
    compositions: object
    particles: object
    law: object
    odd_law: object
    odd: np.ndarray
    params: list
    settings: dict = field(default_factory=dict)
    _last: tuple = field(default=(None, None), repr=False)

    @property
    def n_members(self):
        return len(self.params)

    @property
    def member_slopes(self):
        """(n_members, 2) true Vegard slopes ([100], [001]) of each member."""
        odd = np.zeros(self.n_members, bool)
        odd[self.odd] = True
        base = np.asarray(self.law.slopes, dtype=float)
        alt = base if self.odd_law is None else np.asarray(self.odd_law.slopes, dtype=float)
        return np.where(odd[:, None], alt[None], base[None])

    @property
    def truth(self):
        """The truth as a dict: ``law``, ``slopes``, ``odd_law``, ``odd``, ``member_slopes``,
        ``members`` (the per-member parameters)."""
        return dict(law=self.law, slopes=np.asarray(self.law.slopes, dtype=float),
                    odd_law=self.odd_law, odd=self.odd.copy(),
                    member_slopes=self.member_slopes, members=[dict(p) for p in self.params])

    def member(self, i):
        """Make member ``i`` (a :class:`SyntheticParticle`), exactly as the collection has it."""
        p = self.params[int(i)]
        s = self.settings
        law = self.odd_law if p["odd"] else self.law
        part = make_particle(
            shape=p["shape"], pixel_size=p["pixel_size"], composition=p["pattern"],
            interface_width=s["interface_width"], law=law, material=s["material"],
            crystal_angle=p["crystal_angle"], plane=s["plane"],
            n_dislocations=s["n_dislocations"], noise=s["noise"],
            blur_factor=s["blur_factor"], reference=p["reference"], seed=p["seed"],
            mask=_outline(p), composition_kwargs={"fraction": p["state_of_charge"]})
        if s.get("xray_psf", "pixels") == "gaussian" and s["blur_factor"] > 1:
            from ..fields import FWHM_PER_SIGMA, masked_gaussian

            part.X_observed = np.clip(masked_gaussian(part.X_true, part.mask,
                                                      s["blur_factor"] / FWHM_PER_SIGMA), 0, 1)
            part.settings["xray_psf"] = "gaussian"
        return part

    def member_signals(self, i):
        """(StrainField, CompositionMap) of member ``i`` (the last one made is reused)."""
        i = int(i)
        if self._last[0] == i:
            return self._last[1]
        if isinstance(self.strains, list):
            return self.strains[i], self.compositions[i]
        part = self.member(i)
        pair = (_strain_signal(part, f"Synthetic strain field (member {i})"),
                _composition_signal(part, f"Synthetic composition (member {i})"))
        self._last = (i, pair)
        return pair

    def save(self, directory, file_format="zspy", overwrite=True, show_progressbar=None):
        """Write every member's strain and composition, one member at a time.

        Parameters
        ----------
        directory : str or path
            Created if missing.
        file_format : {"zspy", "hspy"}
        overwrite : bool
        show_progressbar : bool, optional

        Returns
        -------
        (list of str, list of str)
            Paths of the strain files and the composition files, in member order;
            ``hs.load(path, lazy=True)`` reads each back with its signal type.
        """
        from pathlib import Path

        from .._utils import progressbar

        if file_format not in ("zspy", "hspy"):
            raise ValueError(f"file_format must be 'zspy' or 'hspy', got {file_format!r}")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        strains, comps = [], []
        for i in progressbar(range(self.n_members), show_progressbar, total=self.n_members,
                             desc="writing members"):
            s, c = self.member_signals(i)
            ps = directory / f"member_{i:04d}_strain.{file_format}"
            pc = directory / f"member_{i:04d}_composition.{file_format}"
            s.save(ps, overwrite=overwrite)
            c.save(pc, overwrite=overwrite)
            strains.append(str(ps))
            comps.append(str(pc))
        self._last = (None, None)
        return strains, comps


def _outline(p):
    """Member outline, drawn from the member's own outline seed."""
    from .images import _particle

    return _particle(tuple(p["shape"]), p["outline"], np.random.default_rng(p["outline_seed"]))


def _check_grid_noise(shape, noise, minimum):
    """A grid of at least ``minimum`` px and a finite noise >= 0: else a clear error."""
    try:
        shp = tuple(int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be two integers (ny, nx), got {shape!r}") from None
    if len(shp) != 2 or shp[0] < minimum[0] or shp[1] < minimum[1]:
        raise ValueError(f"shape must be (ny, nx) of at least {minimum} px, got {shape!r}")
    if not (np.isscalar(noise) and np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite strain standard deviation >= 0, got {noise!r}")
    return shp


def _member_params(seed, i, shape, pixel_size, size_spread, pixel_spread, soc_range,
                   patterns, outlines, reference_sd, odd):
    """The random settings of member ``i``, drawn from its own seed (no physics)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
    scale = rng.uniform(1 - size_spread, 1 + size_spread)
    shp = (max(40, int(round(shape[0] * scale))), max(60, int(round(shape[1] * scale))))
    px = float(pixel_size) * rng.uniform(1 - pixel_spread, 1 + pixel_spread)
    return dict(shape=shp, pixel_size=float(px), outline=str(rng.choice(outlines)),
                pattern=str(rng.choice(patterns)),
                state_of_charge=float(rng.uniform(*soc_range)),
                crystal_angle=float(rng.uniform(-np.pi / 2, np.pi / 2)),
                reference=tuple(float(v) for v in rng.normal(0.0, reference_sd)),
                odd=bool(odd), seed=int(rng.integers(2**31)),
                outline_seed=int(rng.integers(2**31)))


def particle_collection(n_members=20, seed=0, shape=(100, 170), pixel_size=5.0,
                        size_spread=0.2, pixel_spread=0.2, law="vegard", n_odd=0,
                        odd_factor=1.10, odd_law=None, material="LixFePO4", plane="stress",
                        noise=2e-3, blur_factor=4, n_dislocations=3, interface_width=6.0,
                        state_of_charge=(0.25, 0.75), patterns=PATTERNS, outlines=OUTLINES,
                        reference_sd=(1e-3, 1e-3, 5e-4, 2e-3), xray_psf="pixels", lazy=False,
                        show_progressbar=None):
    """N synthetic particles sharing one eigenstrain law (a few, optionally, another).

    Each member draws, from its own seed, an irregular platelet outline (hexagon,
    diamond or ellipse, slightly rotated), a grid and pixel size, an in-plane
    crystal orientation (angle of [100] uniform in [-pi/2, pi/2)), a composition pattern
    and a state of charge, a reference strain and rotation offset, and
    ``n_dislocations`` edge dislocations; its strain is the forward solution of
    its law (traction-free, ``material``'s stiffness) plus white noise.

    Parameters
    ----------
    n_members : int
    seed : int
        Member ``i`` depends only on ``(seed, i)`` (and which members are odd):
        a collection of 100 starts with the 20 members of one of 20.
    shape : (int, int)
        Typical strain grid (ny, nx) in px.
    pixel_size : float
        Typical strain-grid pixel size (nm).
    size_spread, pixel_spread : float
        Relative spread (uniform, +-) of the grid size and of the pixel size; both
        0 give every member the same grid (e.g. to stack them on a navigation axis).
    law : "vegard", "nonlinear" or callable
        The shared truth eps0(X) - eps0(0), crystal frame ([100], [001]).
    n_odd : int
        Members (chosen at random) that follow ``odd_law``.
    odd_factor : float
        ``odd_law`` is ``odd_factor * law`` unless given (1.10: 10 % steeper).
    odd_law : callable, optional
    material : str
        Stiffness, as :func:`make_particle` (``"LixFePO4"``: C(X) between FePO4
        and LiFePO4, the package's default).
    plane : {"stress", "strain"}
    noise : float
        Standard deviation of the white strain noise.
    blur_factor : int
        X-ray pixel size / strain pixel size of the composition (block mean,
        bilinear back onto the strain grid, noise-free).
    xray_psf : {"pixels", "gaussian"}
        ``"pixels"``: the X-ray map as above (what a registration makes of a map
        ``blur_factor`` times coarser). ``"gaussian"``: instead a Gaussian blur on
        the strain grid with FWHM = the X-ray pixel, exactly the model the learning
        takes from the registration's record (to check the statistics of a fit
        whose resolution model is right); the record is the same.
    n_dislocations : int
        Edge dislocations per member.
    interface_width : float
        10-90 % width of the phase boundaries (strain px).
    state_of_charge : (float, float)
        Range of the Li-rich area fraction (``two_phase``, ``core_shell``).
    patterns, outlines : sequence of str
        Composition patterns (see :func:`composition_field`) and outlines drawn from.
    reference_sd : (4,) floats
        Standard deviations of the per-member reference strain e11, e22, e12 and
        rotation offset (rad).
    lazy : bool
        Make no member now: ``strains`` and ``compositions`` make each member when
        it is indexed, one at a time (for collections too large to hold).
    show_progressbar : bool, optional

    Returns
    -------
    ParticleCollection

    Examples
    --------
    >>> from hyperspy_chemomech.simulate import particle_collection
    >>> col = particle_collection(n_members=3, shape=(50, 80), n_odd=1, n_dislocations=1)
    >>> len(col.strains), col.odd.size
    (3, 1)
    """
    from .._utils import progressbar

    n_members, n_odd = int(n_members), int(n_odd)
    if n_members < 1:
        raise ValueError(f"n_members must be >= 1, got {n_members}")
    if not 0 <= n_odd <= n_members:
        raise ValueError(f"n_odd must lie in [0, n_members={n_members}], got {n_odd}")
    if not (0 <= size_spread < 1 and 0 <= pixel_spread < 1):
        raise ValueError(f"size_spread and pixel_spread must lie in [0, 1), got {size_spread} "
                         f"and {pixel_spread}")
    lo, hi = (float(v) for v in state_of_charge)
    if not 0 < lo <= hi < 1:
        raise ValueError(f"state_of_charge must be a range inside (0, 1), got {state_of_charge}")
    if xray_psf not in ("pixels", "gaussian"):
        raise ValueError(f"xray_psf must be 'pixels' or 'gaussian', got {xray_psf!r}")
    # members are floored at 40 x 60 px (below that a platelet has too few blocks)
    shape = _check_grid_noise(shape, noise, (40, 60))
    if odd_law is None and not (np.isscalar(odd_factor) and np.isfinite(odd_factor)
                                and odd_factor > 0):
        raise ValueError(f"odd_factor must be a finite number > 0, got {odd_factor!r}")
    bad = [p for p in patterns if p not in PATTERNS] + [o for o in outlines if o not in OUTLINES]
    if bad or not len(patterns) or not len(outlines):
        raise ValueError(f"unknown or no patterns / outlines {bad}; use {PATTERNS} and {OUTLINES}")
    law = resolve_law(law)
    alt = None
    if n_odd:
        alt = scaled_law(law, odd_factor) if odd_law is None else resolve_law(odd_law)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2**32 - 1,)))
    odd = np.sort(rng.choice(n_members, size=n_odd, replace=False)).astype(int)
    is_odd = np.isin(np.arange(n_members), odd)
    params = [_member_params(seed, i, shape, pixel_size, size_spread, pixel_spread, (lo, hi),
                             list(patterns), list(outlines), reference_sd, is_odd[i])
              for i in range(n_members)]
    settings = dict(material=material, plane=plane, noise=float(noise),
                    blur_factor=int(blur_factor), n_dislocations=int(n_dislocations),
                    interface_width=float(interface_width), seed=seed, odd_factor=odd_factor,
                    xray_psf=xray_psf, lazy=bool(lazy))
    col = ParticleCollection(strains=None, compositions=None, particles=None, law=law,
                             odd_law=alt, odd=odd, params=params, settings=settings)
    if lazy:
        col.strains, col.compositions = _Members(col, "strain"), _Members(col, "composition")
        return col
    col.particles = [col.member(i) for i in progressbar(
        range(n_members), show_progressbar, total=n_members, desc="simulating particles")]
    pairs = [(_strain_signal(p, f"Synthetic strain field (member {i})"),
              _composition_signal(p, f"Synthetic composition (member {i})"))
             for i, p in enumerate(col.particles)]
    col.strains = [s for s, _ in pairs]
    col.compositions = [c for _, c in pairs]
    return col


@dataclass
class OperandoSeries:
    """What :func:`operando_series` makes: one particle through T frames, and the truth.

    Positions and maps in the ``*_true`` / ``mask`` attributes are in the first
    frame's coordinates; frame ``t`` of the signals is shifted by ``drift[t]``.
    """

    strain: object               #: StrainField, data (T, 4, ny, nx): (time, component | y, x)
    composition: object          #: CompositionMap, data (T, ny, nx): (time | y, x)
    law: object                  #: callable, the truth eps0(X) - eps0(0), crystal frame
    mask: np.ndarray             #: (ny, nx) bool, the body in frame 0
    X_true: np.ndarray           #: (T, ny, nx) composition at strain resolution, frame 0 coords
    X_observed: np.ndarray       #: (T, ny, nx) as the X-ray map sees it, frame 0 coords
    strain_clean: np.ndarray     #: (T, 4, ny, nx) forward strain, no noise, defects or reference
    front_position: np.ndarray   #: (T,) nm, front position along its normal (from the body centre)
    front_angle: float           #: rad, direction of the front's motion (from +x toward +y)
    drift: np.ndarray            #: (T, 2) int px (dy, dx) of each frame relative to the first
    crystal_angle: float         #: rad
    reference: np.ndarray        #: (4,)
    dislocation_positions: np.ndarray  #: (n, 2) (y, x) px, frame 0
    burgers: np.ndarray          #: (n, 2) nm
    pixel_size: float            #: nm
    frame_interval: float        #: time between frames, in ``settings["time_units"]``
    settings: dict = field(default_factory=dict)

    @property
    def n_frames(self):
        return self.X_true.shape[0]

    @property
    def truth(self):
        """The truth as a dict (law, slopes, mask, drift, front positions, crystal angle)."""
        return dict(law=self.law, slopes=np.asarray(self.law.slopes, dtype=float),
                    mask=self.mask.copy(), drift=self.drift.copy(),
                    front_position=self.front_position.copy(), crystal_angle=self.crystal_angle,
                    reference=self.reference.copy())


def _shift(a, dy, dx):
    """Shift the last two axes by whole pixels, NaN where nothing comes in."""
    out = np.full_like(a, np.nan)
    ny, nx = a.shape[-2:]
    ys, yd = (slice(0, ny - dy), slice(dy, ny)) if dy >= 0 else (slice(-dy, ny), slice(0, ny + dy))
    xs, xd = (slice(0, nx - dx), slice(dx, nx)) if dx >= 0 else (slice(-dx, nx), slice(0, nx + dx))
    out[..., yd, xd] = a[..., ys, xs]
    return out


def _drift_walk(n_frames, step, mask, rng):
    """(T, 2) integer drift: a random walk of step ``step`` px, kept inside the grid."""
    drift = np.zeros((n_frames, 2))
    if step > 0 and n_frames > 1:
        drift[1:] = np.cumsum(rng.normal(0.0, step, (n_frames - 1, 2)), axis=0)
    ys, xs = np.nonzero(mask)
    ny, nx = mask.shape
    lo = np.array([-ys.min(), -xs.min()])
    hi = np.array([ny - 1 - ys.max(), nx - 1 - xs.max()])
    return np.clip(np.rint(drift), lo, hi).astype(int)


def operando_series(n_frames=30, shape=(150, 250), pixel_size=5.0, frame_interval=60.0,
                    time_units="s", law="vegard", material="LixFePO4", plane="stress",
                    crystal_angle=None, front_angle=None, travel=(0.15, 0.85),
                    interface_width=6.0, x_low=0.05, x_high=0.95, noise=2e-3, blur_factor=4,
                    n_dislocations=3, drift=0.0, reference=None, seed=0,
                    show_progressbar=None):
    """One particle through a charge: a phase boundary sweeps a fixed body over T frames.

    The Li-rich phase (``x_high``) grows from one side of the particle behind a
    slightly wavy front that moves at constant speed along ``front_angle``; the
    body, its crystal frame, reference strain and dislocations stay the same.
    Each frame's strain is the forward solution at that frame's composition
    (stiffness C(X) of ``material``), plus its own white noise; the composition
    is the X-ray map's (``blur_factor`` times coarser, noise-free). With
    ``drift``, frame ``t`` is shifted by a whole-pixel random walk ``drift[t]``
    (strain and composition together), as a drifting specimen would be.

    Parameters
    ----------
    n_frames : int
    shape : (int, int)
        Strain grid (ny, nx) in px.
    pixel_size : float
        nm.
    frame_interval : float
        Time between frames (``time_units``); calibrates the time axis.
    time_units : str
    law : "vegard", "nonlinear" or callable
        The truth eps0(X) - eps0(0), crystal frame.
    material : str
        Stiffness as :func:`make_particle` (``"LixFePO4"``: C(X)).
    plane : {"stress", "strain"}
    crystal_angle : float, optional
        Angle of [100] from +x toward +y (rad); default random in [-pi/2, pi/2).
    front_angle : float, optional
        Direction the front moves in (rad); default random.
    travel : (float, float)
        Front position in the first and last frame, as fractions of the particle's
        extent along ``front_angle``.
    interface_width : float
        10-90 % width of the front (px).
    x_low, x_high : float
        Compositions ahead of and behind the front.
    noise : float
        Strain noise (standard deviation), new in every frame.
    blur_factor : int
        X-ray pixel / strain pixel.
    n_dislocations : int
    drift : float
        Standard deviation of the per-frame drift step (px); 0 for none.
    reference : (4,) floats, optional
        Reference strain e11, e22, e12 and rotation offset; default random.
    seed : int
    show_progressbar : bool, optional

    Returns
    -------
    OperandoSeries

    Examples
    --------
    >>> from hyperspy_chemomech.simulate import operando_series
    >>> op = operando_series(n_frames=4, shape=(50, 80), n_dislocations=0)
    >>> op.strain.data.shape, op.composition.data.shape
    ((4, 4, 50, 80), (4, 50, 80))
    """
    import hyperspy.api as hs

    from .._metadata import record, set_frame
    from .._utils import progressbar
    from ..mechanics import ParticleElasticity
    from ..signals import StrainField
    from .images import _particle

    n_frames = int(n_frames)
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    if not (np.isfinite(frame_interval) and frame_interval > 0):
        raise ValueError(f"frame_interval must be a positive number, got {frame_interval!r}")
    t0, t1 = (float(v) for v in travel)
    if not 0 <= t0 <= 1 or not 0 <= t1 <= 1:
        raise ValueError(f"travel must be two fractions in [0, 1], got {travel}")
    if drift < 0:
        raise ValueError(f"drift must be >= 0 px, got {drift}")
    shape = _check_grid_noise(shape, noise, (16, 16))
    rng = np.random.default_rng(seed)
    law = resolve_law(law)
    mask = _particle(tuple(shape), "hexagon", rng)
    crystal_angle = (rng.uniform(-np.pi / 2, np.pi / 2) if crystal_angle is None
                     else float(crystal_angle))
    front_angle = rng.uniform(0, 2 * np.pi) if front_angle is None else float(front_angle)
    ref = (rng.normal(0.0, (1e-3, 1e-3, 5e-4, 2e-3)) if reference is None
           else np.asarray(reference, dtype=float))
    if ref.shape != (4,):
        raise ValueError(f"reference must hold 4 numbers (e11, e22, e12, theta), got {ref.shape}")

    ys, xs = np.nonzero(mask)
    yy, xx = np.indices(mask.shape, dtype=float)
    d = np.cos(front_angle) * (xx - xs.mean()) + np.sin(front_angle) * (yy - ys.mean())
    dmin, dmax = d[mask].min(), d[mask].max()
    size = np.sqrt(mask.sum())
    d_wavy = d + 0.04 * (dmax - dmin) * _smooth_random(mask.shape, 0.15 * size, rng)
    fronts = dmin + (t0 + (t1 - t0) * np.linspace(0.0, 1.0, n_frames)) * (dmax - dmin)
    X_true = np.stack([np.where(mask, x_low + (x_high - x_low)
                                * _tanh_profile(f - d_wavy, interface_width), np.nan)
                       for f in fronts])

    Q = particle_stiffness(material, "homogeneous", plane)
    homogeneous = isinstance(Q, np.ndarray) and Q.shape == (3, 3)
    solver = None
    clean = np.empty((n_frames, 4) + mask.shape)
    for t in progressbar(range(n_frames), show_progressbar, total=n_frames,
                         desc="simulating frames"):
        if solver is None or not homogeneous:   # C(X) changes with the frame's composition
            solver = ParticleElasticity(mask, pixel_size=pixel_size, stiffness=Q,
                                        composition=X_true[t], crystal_angle=crystal_angle)
        clean[t] = forward_strain(solver, law, X_true[t], mask, crystal_angle)
    pos, bur, disl = place_dislocations(mask, n_dislocations, None, pixel_size, rng)
    noise_free = np.where(mask, clean + disl + ref[:, None, None], np.nan)
    X_obs = np.stack([blur_to_coarse_grid(x, mask, blur_factor) for x in X_true])
    shifts = _drift_walk(n_frames, float(drift), mask, rng)
    strain = np.empty_like(noise_free)
    comp = np.empty_like(X_obs)
    for t in range(n_frames):
        noisy = np.where(mask, noise_free[t] + noise * rng.standard_normal(noise_free[t].shape),
                         np.nan)
        strain[t] = _shift(noisy, *shifts[t])
        comp[t] = _shift(X_obs[t], *shifts[t])

    ny, nx = mask.shape
    time_axis = dict(name="time", size=n_frames, scale=float(frame_interval), offset=0.0,
                     units=time_units, navigate=True)
    img = [dict(name="y", size=ny, scale=float(pixel_size), offset=0.0, units="nm",
                navigate=False),
           dict(name="x", size=nx, scale=float(pixel_size), offset=0.0, units="nm",
                navigate=False)]
    sf = StrainField(strain, axes=[time_axis, dict(name="component", size=4, navigate=True)]
                     + img)
    sf.metadata.General.title = "Synthetic operando strain field"
    set_frame(sf, crystal_angle, _FRAME_SOURCE)
    cm = hs.signals.Signal2D(comp, axes=[dict(time_axis)] + [dict(a) for a in img])
    cm.set_signal_type("composition_map")
    cm.metadata.General.title = "Synthetic operando composition"
    if blur_factor > 1:
        record(cm, "registration", source_pixel_size_nm=float(pixel_size * blur_factor))
    return OperandoSeries(
        strain=sf, composition=cm, law=law, mask=mask, X_true=X_true, X_observed=X_obs,
        strain_clean=clean, front_position=fronts * float(pixel_size),
        front_angle=float(front_angle), drift=shifts, crystal_angle=float(crystal_angle),
        reference=ref, dislocation_positions=pos, burgers=bur, pixel_size=float(pixel_size),
        frame_interval=float(frame_interval),
        settings=dict(material=material, plane=plane, noise=float(noise),
                      blur_factor=int(blur_factor), interface_width=float(interface_width),
                      x_low=float(x_low), x_high=float(x_high), time_units=time_units,
                      seed=seed, homogeneous_stiffness=bool(homogeneous)))
