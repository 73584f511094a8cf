"""One law from many particles or from an operando series: the HyperSpy face of issue 17.

Thin: check the members (naming the one that is wrong), extract plain arrays
and calibration (HyperSpy signals do not pickle; lazy members stay lazy until
their turn), call :func:`hyperspy_chemomech.learning.learn_law_collection`, wrap
the laws as :class:`EigenstrainLaw` signals.
"""

from collections.abc import Sequence

import numpy as np

from .._metadata import pixel_size_nm, spatial_axes
from ..fields import require_real

#: Options of ``StrainField.learn_eigenstrain`` that a collection passes on as they are.
_PASSED = ("basis", "degree", "max_degree", "boundary", "use_rotation", "shear", "selection",
           "n_folds", "block_size", "sigma_grid", "min_range", "dislocations", "extend_body",
           "uncertainty", "seed", "method", "monotonic", "composition_resolution",
           "dislocation_lattice", "level", "drift", "share_factor", "n_jobs", "backend",
           "shared_resolution", "model_error", "commutator")


def _members(strains, compositions):
    """(list of (strain getter, composition getter, strain signal, composition signal), series?)."""
    from .composition_map import CompositionMap
    from .strain_field import StrainField

    if isinstance(strains, StrainField):
        nav = strains.axes_manager.navigation_shape
        if len(nav) != 2 or nav[0] != 4:
            raise ValueError("a StrainField collection needs navigation shape (4, T): "
                             f"(time, component | y, x); got navigation shape {nav}. "
                             "For particles of different grids pass a list of StrainFields")
        if not isinstance(compositions, CompositionMap) or \
                compositions.axes_manager.navigation_dimension != 1:
            raise ValueError("with a StrainField series (time, component | y, x) give one "
                             "CompositionMap series (time | y, x)")
        T = nav[1]
        if compositions.axes_manager.navigation_shape[0] != T:
            raise ValueError(f"the strain series has {T} frames, the composition series "
                             f"{compositions.axes_manager.navigation_shape[0]}")
        _check_grid(strains, compositions, "the series")
        frames = [(lambda t=t: strains.data[t], lambda t=t: compositions.data[t])
                  for t in range(T)]
        return frames, True, strains, compositions
    if isinstance(strains, (list, tuple)):
        if not isinstance(compositions, (list, tuple)):
            raise TypeError("with a list of StrainFields give a list of CompositionMaps, one per "
                            "member")
        if len(strains) != len(compositions):
            raise ValueError(f"{len(strains)} strain fields but {len(compositions)} composition "
                             "maps: give one composition per member")
        if not strains:
            raise ValueError("the collection is empty: give at least one strain field")
        out = []
        for i, (s, c) in enumerate(zip(strains, compositions)):
            if not isinstance(s, StrainField):
                raise TypeError(f"member {i}: strain must be a StrainField, got {type(s).__name__}")
            if not isinstance(c, CompositionMap):
                raise TypeError(f"member {i}: composition must be a CompositionMap, got "
                                f"{type(c).__name__}")
            if s.axes_manager.navigation_shape != (4,) or c.axes_manager.navigation_dimension:
                raise ValueError(f"member {i}: a list member must be one (4 | y, x) strain field "
                                 "and one (| y, x) composition map")
            _check_grid(s, c, f"member {i}")
            out.append((lambda s=s: s.data, lambda c=c: c.data))
        return out, False, list(strains), list(compositions)
    raise TypeError("strains must be a list of StrainFields or one StrainField with a time axis "
                    f"(time, component | y, x); got {type(strains).__name__}")


def _check_grid(strain, composition, who):
    """Same grid and calibration (without loading the data); the error names ``who``."""
    shape = strain.axes_manager.signal_shape[::-1]
    cshape = composition.axes_manager.signal_shape[::-1]
    if tuple(shape) != tuple(cshape):
        raise ValueError(f"{who}: composition grid {tuple(cshape)} differs from its strain grid "
                         f"{tuple(shape)}; resample it first (CorrelativeTransform.apply(comp, "
                         "onto=strain))")
    ps = pixel_size_nm(strain, f"{who} strain field")
    pc = pixel_size_nm(composition, f"{who} composition")
    if not np.allclose(ps, pc, rtol=1e-6):
        raise ValueError(f"{who}: composition pixel size {pc} nm differs from the strain's {ps} nm")
    for (a, b), name in zip(zip(spatial_axes(strain), spatial_axes(composition)), ("y", "x")):
        if not np.isclose(a.offset, b.offset, atol=0.01 * ps[0]):
            raise ValueError(f"{who}: composition {name}-offset {b.offset} differs from the "
                             f"strain's {a.offset}")


def _real(getter, what):
    """A getter returning the member's data as a real float array, computed when called."""
    def get():
        a = getter()
        if hasattr(a, "compute"):
            a = a.compute()
        return np.asarray(require_real(a, what), dtype=float)
    return get


class _DaskMember:
    """A lazy member's dask array that a worker reads itself (it pickles; a signal does not).

    On a cluster only this recipe travels (e.g. a zspy chunk graph), and the worker
    reads the file: the client neither loads nor ships the member's arrays.
    """

    reads_itself = True

    def __init__(self, array, what):
        self.array, self.what = array, what
        self.shape = tuple(array.shape)
        self.ndim = len(self.shape)

    def __array__(self, dtype=None, copy=None):
        a = np.asarray(require_real(self.array.compute(scheduler="sync"), self.what),
                       dtype=float)
        return a if dtype is None else a.astype(dtype)


def _member_array(signal, getter, what, shape):
    """The engine's view of one member's data: read where the engine reads it."""
    data = getattr(signal, "data", None)
    if signal is not None and signal._lazy and hasattr(data, "dask") and \
            tuple(data.shape) == tuple(shape):
        return _DaskMember(data, what)
    return _Lazy(_real(getter, what), shape)


class _Lazy:
    """An array-like that computes the member only when the engine reads it."""

    def __init__(self, get, shape):
        self._get, self.shape = get, tuple(shape)
        self.ndim = len(self.shape)

    def __array__(self, dtype=None, copy=None):
        a = self._get()
        return a if dtype is None else a.astype(dtype)


class _MemberLaws(Sequence):
    """Each member's own law as an EigenstrainLaw, made when first asked for.

    A collection of hundreds of members would otherwise build hundreds of signals
    (a few ms each, on the client, after the members are done) that most sessions
    never open.
    """

    def __init__(self, fits, materials, plane):
        self._fits, self._materials, self._plane = fits, materials, plane
        self._made = [None] * len(fits)

    def __len__(self):
        return len(self._fits)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        i = range(len(self))[i]          # negative indices; IndexError out of range
        if self._made[i] is None:
            from .eigenstrain_law import EigenstrainLaw

            m = EigenstrainLaw.from_fit(self._fits[i])
            m.metadata.set_item("Chemomech.law.settings.material",
                                _material_record(self._materials[i]))
            m.metadata.set_item("Chemomech.law.settings.plane", self._plane)
            m.metadata.General.title = f"Eigenstrain law of member {i}"
            self._made[i] = m
        return self._made[i]

    def __repr__(self):
        return f"<{len(self)} member laws>"


def learn_eigenstrain_collection(strains, compositions, material="LixFePO4", crystal_angles=None,
                                 masks=None, client=None, show_progressbar=None, plane="stress",
                                 **learn_kwargs):
    """Learn one eigenstrain law from a collection of particles or an operando series.

    Parameters
    ----------
    strains : list of StrainField, or StrainField (time, component | y, x)
        A list: any particles (members may differ in grid and pixel size). One
        StrainField with a time axis: an operando series of one particle on one
        grid (its body fixed: one factorisation serves every frame). Lazy signals
        are computed one member at a time.
    compositions : list of CompositionMap, or CompositionMap (time | y, x)
        Each member's composition on its strain grid.
    material : str, Material, array or pair, or a list of one per member
        Stiffness, as :meth:`StrainField.learn_eigenstrain` (default ``"LixFePO4"``:
        C(X) between FePO4 and LiFePO4).
    crystal_angles : float, list of float or None
        rad, one for all or one per member; None: each member's stored frame
        (``metadata.Chemomech.frame``), else 0.
    masks : list of array_like of bool, optional
        Per-member bodies (None entries: where the composition is finite).
    client : distributed.Client, "auto" or None
        Run each member on a ``dask.distributed`` worker (``"auto"``: the active
        client, if any); the shared fit runs here. Without one the members run
        here, ``n_jobs`` at once (default the usable CPUs, at most 8; an operando
        series frame after frame), with a progress bar: in worker processes for
        collections of at least 8 members per worker, else in threads
        (``backend``: ``"auto"``, ``"threads"``, ``"processes"``).
    show_progressbar : bool, optional
    plane : {"stress", "strain"}
    **learn_kwargs
        As :meth:`StrainField.learn_eigenstrain` where they make sense:
        ``basis``, ``degree`` (``"auto"``: cross-validated over members),
        ``max_degree``, ``boundary``, ``use_rotation``, ``shear``, ``selection``,
        ``n_folds``, ``block_size``, ``sigma_grid``, ``min_range``,
        ``dislocations``, ``dislocation_lattice``, ``extend_body``, ``seed``,
        ``composition_resolution`` (FWHM, nm; one or one per member; default
        each member's registration record, else estimated per member); and
        ``level`` (of the homogeneity test, 0.05), ``model_error`` (allow for
        the members' common model error in the shared interval and the
        homogeneity test, default True), ``commutator`` (correct each member's
        responses for the blur's commutator with its finite body, default True;
        ``False``: each member exactly as ``learn_eigenstrain``) and, for a
        series, ``drift``
        (None, ``"register"``: each frame's outline registered to the first by
        phase correlation, integer px; or (dy, dx) px per frame), ``share_factor``
        (series: one factorisation for all frames, default True), ``n_jobs`` and
        ``backend``.
        Composition errors are not propagated in a collection.

    Returns
    -------
    EigenstrainLaw
        The shared law (``vegard()``, ``band()``, ``evaluate()`` as for one
        particle; its interval from the cluster jackknife over every spatial
        block of every member). Attributes (Python attributes of this object,
        not saved with it): ``member_laws`` (a sequence of an EigenstrainLaw per
        member, fitted alone with its own nuisance at the shared degree; each
        signal made when first indexed) and ``homogeneity``
        (:class:`~hyperspy_chemomech.learning.HomogeneityTest`: ``statistic``,
        ``p_value``, ``rejected``, ``odd_members``, ``member_p_values``). Saved in
        ``metadata.Chemomech.collection``: n_members, n_factorisations,
        timings, the homogeneity test, each member's slopes and, under the
        shared law, its reference strain, resolution and drift.

    Raises
    ------
    ValueError, TypeError
        Mismatched lists, a member whose composition grid differs from its strain
        grid, a material list of the wrong length: the message names the member.
    """
    from .._metadata import record, resolve_crystal_angle
    from ..learning import learn_law_collection
    from ..mechanics import in_plane_lattice, resolve_stiffness
    from ._strain_field_decomposition import _material_pair, crystal_angle_argument
    from .eigenstrain_law import EigenstrainLaw

    unknown = sorted(set(learn_kwargs) - set(_PASSED))
    if unknown:
        raise TypeError(f"learn_eigenstrain_collection got unknown option(s) {unknown}; it takes "
                        f"{', '.join(_PASSED)}")
    getters, series, s_sigs, c_sigs = _members(strains, compositions)
    M = len(getters)
    s_list = [s_sigs] * M if series else s_sigs
    c_list = [c_sigs] * M if series else c_sigs
    if isinstance(material, list):
        if len(material) != M:
            raise ValueError(f"material has {len(material)} entries for {M} members: give one "
                             "material for all or one per member")
    materials = list(material) if isinstance(material, list) else [material] * M
    stiff, stiffnesses = {}, []
    for i, m in enumerate(materials):
        key = repr(m)
        if key not in stiff:
            try:
                pair = _material_pair(m)
                stiff[key] = (pair, resolve_stiffness(pair, plane))
            except (ValueError, TypeError, KeyError) as err:
                raise ValueError(f"member {i}: material {m!r}: {err}") from None
        materials[i] = stiff[key][0]
        stiffnesses.append(stiff[key][1])
    if isinstance(crystal_angles, (list, tuple, np.ndarray)):
        if len(crystal_angles) != M:
            raise ValueError(f"crystal_angles has {len(crystal_angles)} entries for {M} members")
        given = list(crystal_angles)
    else:
        given = [crystal_angles] * M
    if series:   # one body, one frame: the series' stored frame unless given
        first = resolve_crystal_angle(s_sigs, crystal_angle_argument(given[0]), "the series")[0]
        angles = [first if a is None else float(crystal_angle_argument(a)) for a in given]
    else:
        angles = [resolve_crystal_angle(s, crystal_angle_argument(a), f"member {i}")[0]
                  for i, (s, a) in enumerate(zip(s_list, given))]
    pixels = [pixel_size_nm(s, f"member {i} strain field") for i, s in enumerate(s_list)]
    source = []
    for c in c_list:
        key = "Chemomech.registration.source_pixel_size_nm"
        source.append(float(c.metadata.get_item(key)) if c.metadata.has_item(key) else None)
    if "dislocation_lattice" not in learn_kwargs:
        lat = [in_plane_lattice(m) for m in materials]
        learn_kwargs["dislocation_lattice"] = lat if M > 2 else lat[0]
    shapes = [tuple(s.axes_manager.signal_shape[::-1]) for s in s_list]
    strains_a = [_member_array(None if series else s_list[i], g[0],
                               f"member {i} strain field", (4,) + shapes[i])
                 for i, g in enumerate(getters)]
    comps_a = [_member_array(None if series else c_list[i], g[1], f"member {i} composition",
                             shapes[i])
               for i, g in enumerate(getters)]
    if series:   # a series' variance (T, 4, ny, nx): frame by frame, read when its turn comes
        whole = _variance_data(s_sigs, "the series")
        variances = None if whole is None else [
            _Lazy(_real(lambda t=t: whole[t], f"frame {t} variance"), (4,) + shapes[t])
            for t in range(M)]
    else:
        variances = []
        for i, s in enumerate(s_list):
            v = _variance_data(s, f"member {i}")
            variances.append(None if v is None else
                             _Lazy(_real(lambda v=v: v, f"member {i} variance"), np.shape(v)))
    if masks is not None and not isinstance(masks, (list, tuple)):
        masks = [masks] * M
    level = learn_kwargs.pop("level", 0.05)
    fit = learn_law_collection(
        strains_a, comps_a, pixels, stiffnesses, crystal_angles=angles, masks=masks,
        variances=variances, source_pixel_size=source, same_body=series, client=client,
        show_progressbar=show_progressbar, level=level, **learn_kwargs)
    law = EigenstrainLaw.from_fit(fit.law)
    # reference strain and resolution are each member's (member_view gives them): a shared
    # law applied to one particle by StrainField.decompose fits its reference there
    for key in ("reference_strain", "resolution_sigma_px"):
        law.metadata.Chemomech.law.__delattr__(key)
    law.member_laws = _MemberLaws(fit.member_laws, materials, plane)
    law.homogeneity = fit.homogeneity
    mat = _material_record(materials[0]) if len({repr(m) for m in materials}) == 1 else \
        [str(_material_record(m)) for m in materials]
    law.metadata.set_item("Chemomech.law.settings.material", mat)
    law.metadata.set_item("Chemomech.law.settings.plane", plane)
    info = dict(fit.info)
    timings = info.pop("timings_s")
    coll = dict(info, timings_s={k: np.asarray(v) if not np.isscalar(v) else float(v)
                                 for k, v in timings.items()},
                homogeneity=fit.homogeneity.to_dict(),
                member_slopes=np.array([f.vegard["slopes"] for f in fit.member_laws]),
                member_stderr=np.array([f.vegard["stderr"] for f in fit.member_laws]),
                member_reference=np.array([m["reference"] for m in fit.members]),
                member_sigma_px=np.array([m["sigma_px"] for m in fit.members]),
                member_shift_px=np.array([m["shift_px"] for m in fit.members]),
                member_pixel_size_nm=np.array([float(np.mean(p)) for p in pixels]),
                member_crystal_angle=np.array(angles, float),
                member_n_blocks=np.array([m["n_blocks"] for m in fit.members]),
                member_cg_iterations=np.array([m["cg_iterations"] for m in fit.members]),
                member_titles=[str(s.metadata.General.title) for s in s_list])
    law.metadata.set_item("Chemomech.collection", coll)
    law._collection_members = fit.members
    record(law, "collection", n_members=M, series=bool(series))
    law.metadata.General.title = (f"Eigenstrain law of {M} " + ("frames" if series else "members"))
    return law


def _material_record(material):
    if isinstance(material, str):
        return material
    if isinstance(material, (tuple, list)) and all(isinstance(m, str) for m in material):
        return list(material)
    return "user stiffness"


def _variance_data(strain, who):
    """The variance stored with a strain field (its data, not read yet), or None."""
    if not strain.metadata.has_item("Signal.Noise_properties.variance"):
        return None
    v = strain.metadata.Signal.Noise_properties.variance
    data = v.data if hasattr(v, "data") else v
    if np.shape(data) != tuple(strain.data.shape):
        raise ValueError(f"{who}: metadata.Signal.Noise_properties.variance has shape "
                         f"{np.shape(data)}, the strain field {tuple(strain.data.shape)}")
    return data


def member_view(law, i):
    """The shared law as member ``i`` sees it: its reference, resolution, frame and pixel size.

    What :meth:`StrainField.decompose` needs to split member ``i`` with the shared
    coefficients (a new signal; the law is unchanged).
    """
    members = getattr(law, "_collection_members", None)
    if members is None:
        raise ValueError("this law carries no collection members: make it with "
                         "learn_eigenstrain_collection (the member records are not saved)")
    if not 0 <= int(i) < len(members):
        raise IndexError(f"member {i} out of range for {len(members)} members")
    m = members[int(i)]
    view = law.deepcopy()
    view.metadata.set_item("Chemomech.law.reference_strain", np.asarray(m["reference"], float))
    view.metadata.set_item("Chemomech.law.resolution_sigma_px", float(m["sigma_px"]))
    for k in ("pixel_size_nm", "crystal_angle", "boundary", "use_rotation"):
        view.metadata.set_item(f"Chemomech.law.settings.{k}", m["settings"][k])
    view.metadata.General.title = f"{law.metadata.General.title}, member {i}"
    return view


def decompose_collection(strains, compositions, law, show_progressbar=None, **kwargs):
    """Decompose every member of a collection with the shared law.

    Each member is split by :meth:`StrainField.decompose` with the shared law's
    coefficients and that member's own nuisance under it (reference strain,
    resolution, frame: :func:`member_view`); a series is split frame by frame
    (each frame moved by the drift the learning applied is NOT undone: give the
    frames as learned, drift=None).

    Parameters
    ----------
    strains, compositions
        As given to :func:`learn_eigenstrain_collection`.
    law : EigenstrainLaw
        From :func:`learn_eigenstrain_collection` on these members.
    show_progressbar : bool, optional
    **kwargs
        Passed to :meth:`StrainField.decompose` (e.g. ``override``).

    Returns
    -------
    list of DecompositionResult
        One per member, in order.
    """
    from .._utils import progressbar

    from .eigenstrain_law import EigenstrainLaw

    if not isinstance(law, EigenstrainLaw):
        raise TypeError("law must be the EigenstrainLaw returned by learn_eigenstrain_collection, "
                        f"got {type(law).__name__}")
    getters, series, s_sigs, c_sigs = _members(strains, compositions)
    members = getattr(law, "_collection_members", None)
    if members is None:
        raise ValueError("this law was not learned on a collection: give the law returned by "
                         "learn_eigenstrain_collection (for one particle use "
                         "StrainField.decompose)")
    if len(members) != len(getters):
        raise ValueError(f"the law was learned on {0 if members is None else len(members)} "
                         f"members, {len(getters)} are given")
    out = []
    for i in progressbar(range(len(getters)), show_progressbar=show_progressbar,
                         desc="Decomposing members", leave=False):
        s, c = (s_sigs.inav[:, i], c_sigs.inav[i]) if series else (s_sigs[i], c_sigs[i])
        out.append(s.decompose(c, member_view(law, i), show_progressbar=False, **kwargs))
    return out
