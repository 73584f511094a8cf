"""Materials data: lattice parameters and elastic constants with their literature sources.

LiFePO4 (LFP) and FePO4 (FP) are olivine, space group Pnma; the crystal frame is
1 = [100] (a), 2 = [010] (b), 3 = [001] (c). Users add their own with
:func:`register_material` or pass a :class:`Material` wherever a name is accepted.
"""

from dataclasses import dataclass, field

import numpy as np

from ._stiffness import check_stiffness, orthotropic_stiffness, plane_stiffness

_MAXISCH_CEDER = ("T. Maxisch and G. Ceder, Elastic properties of olivine LixFePO4 from "
                  "first principles, Phys. Rev. B 73, 174112 (2006), "
                  "doi:10.1103/PhysRevB.73.174112 (DFT, GGA+U)")
_LATTICE_LFP = ("A. K. Padhi, K. S. Nanjundaswamy and J. B. Goodenough, J. Electrochem. Soc. 144, "
                "1188 (1997); A. Yamada, S. C. Chung and K. Hinokuma, J. Electrochem. Soc. 148, "
                "A224 (2001) (X-ray diffraction, Pnma)")


@dataclass(frozen=True)
class Material:
    """A crystal: lattice and 3D elastic stiffness.

    Parameters
    ----------
    name : str
    lattice : array_like of 3 floats
        Lattice parameters a, b, c (angstrom) of the (orthorhombic) cell.
    stiffness : array_like, shape (6, 6)
        Voigt stiffness (GPa), crystal frame 1 = [100], 2 = [010], 3 = [001],
        order 11, 22, 33, 23, 13, 12, engineering shear strains.
    source : tuple of str
        Citations for the numbers.
    space_group : str, optional

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_chemomech.mechanics import Material, isotropic_stiffness
    >>> m = Material("toy", (4.0, 4.0, 4.0), isotropic_stiffness(100.0, 0.3), ("made up",))
    >>> m.lattice
    array([4., 4., 4.])
    """

    name: str
    lattice: np.ndarray
    stiffness: np.ndarray
    source: tuple = field(default=())
    space_group: str = ""

    def __post_init__(self):
        lat = np.array(self.lattice, dtype=float)
        if lat.shape != (3,) or not np.all(np.isfinite(lat)) or np.any(lat <= 0):
            raise ValueError(f"lattice must be 3 positive lengths (angstrom), got {self.lattice!r}")
        c = check_stiffness(np.array(self.stiffness, dtype=float), 6, f"stiffness of {self.name}")
        if c.ndim != 2:
            raise ValueError("a material has one 6x6 stiffness")
        lat.setflags(write=False)
        c = c.copy()
        c.setflags(write=False)
        src = (self.source,) if isinstance(self.source, str) else tuple(self.source)
        object.__setattr__(self, "lattice", lat)
        object.__setattr__(self, "stiffness", c)
        object.__setattr__(self, "source", src)


_REGISTRY = {
    "LiFePO4": Material(
        "LiFePO4", (10.332, 6.010, 4.692),
        orthotropic_stiffness(c11=138.9, c22=198.0, c33=173.0, c12=72.8, c13=52.5, c23=45.8,
                              c44=46.5, c55=39.8, c66=50.6),
        (f"lattice: {_LATTICE_LFP}", f"elastic constants: {_MAXISCH_CEDER}"), "Pnma"),
    "FePO4": Material(
        "FePO4", (9.821, 5.792, 4.788),
        orthotropic_stiffness(c11=175.9, c22=153.6, c33=135.0, c12=29.6, c13=54.0, c23=19.6,
                              c44=38.8, c55=47.5, c66=55.6),
        (f"lattice: {_LATTICE_LFP}", f"elastic constants: {_MAXISCH_CEDER}"), "Pnma"),
}
_ALIASES = {"lfp": "LiFePO4", "fp": "FePO4"}


def register_material(material, overwrite=False):
    """Make a user-supplied :class:`Material` available by name to :func:`get_material`.

    Parameters
    ----------
    material : Material
    overwrite : bool
        Replace an existing entry of the same name (the built-in ones included).
    """
    if not isinstance(material, Material):
        raise TypeError(f"expected a Material, got {type(material).__name__}")
    if material.name in _REGISTRY and not overwrite:
        raise ValueError(f"material {material.name!r} exists; pass overwrite=True to replace it")
    _REGISTRY[material.name] = material


def get_material(name):
    """Look up a material by name (``"LiFePO4"``/``"LFP"``, ``"FePO4"``/``"FP"``, or registered).

    Parameters
    ----------
    name : str or Material
        A Material is returned as it is.

    Returns
    -------
    Material

    Examples
    --------
    >>> from hyperspy_chemomech.mechanics import get_material
    >>> get_material("LiFePO4").lattice
    array([10.332,  6.01 ,  4.692])
    """
    if isinstance(name, Material):
        return name
    if not isinstance(name, str):
        raise TypeError(f"material must be a name or a Material, got {type(name).__name__}")
    key = _ALIASES.get(name.lower(), name)
    if key not in _REGISTRY:
        raise ValueError(f"unknown material {name!r}; known: {sorted(_REGISTRY)} "
                         "(add one with register_material)")
    return _REGISTRY[key]


def vegard_misfit(start="FePO4", end="LiFePO4"):
    """Relative lattice misfit per crystal axis from ``start`` to ``end``.

    Parameters
    ----------
    start, end : str or Material
        The delithiated and lithiated end members.

    Returns
    -------
    dict
        ``{"[100]": (a_end - a_start) / a_start, "[010]": ..., "[001]": ...}``; with
        Vegard's law the eigenstrain (relative to ``start``) is ``X * misfit``.

    Examples
    --------
    >>> from hyperspy_chemomech.mechanics import vegard_misfit
    >>> {k: round(v, 3) for k, v in vegard_misfit("FePO4", "LiFePO4").items()}
    {'[100]': 0.052, '[010]': 0.038, '[001]': -0.02}
    """
    a, b = get_material(start).lattice, get_material(end).lattice
    d = (b - a) / a
    return {"[100]": float(d[0]), "[010]": float(d[1]), "[001]": float(d[2])}


def resolve_stiffness(material, plane="stress"):
    """Plane stiffness (crystal frame, GPa) from a material description.

    Parameters
    ----------
    material : str, Material, array_like or pair
        A material name (``"LiFePO4"``: homogeneous C), a
        :class:`~hyperspy_chemomech.mechanics.Material`, a 6x6 Voigt stiffness
        (GPa), or a pair of any of these, ``(X = 0 end member, X = 1 end member)``,
        for a stiffness linear in X (e.g. ``("FePO4", "LiFePO4")``).
    plane : {"stress", "strain"}

    Returns
    -------
    numpy.ndarray (3, 3) or tuple of two
    """
    if plane not in ("stress", "strain"):
        raise ValueError(f"plane must be 'stress' or 'strain', got {plane!r}")

    def one(m):
        if isinstance(m, str):
            m = get_material(m)
        if isinstance(m, Material):
            return plane_stiffness(m.stiffness, plane=plane)
        a = np.asarray(m, dtype=float)
        if a.shape == (6, 6):
            return plane_stiffness(a, plane=plane)
        raise ValueError(
            f"material must be a name, a Material, a 6x6 stiffness or a pair of those; got "
            f"an array of shape {a.shape}"
        )

    if isinstance(material, (tuple, list)) and len(material) == 2 and not (
        np.ndim(material[0]) == 1 and np.size(material[0]) == 6
    ):
        return (one(material[0]), one(material[1]))
    return one(material)
