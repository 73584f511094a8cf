"""Length units: the one table that turns a calibrated axis into nanometres."""

#: Factor to nm for every length unit the package accepts (axis units, file headers).
LENGTH_TO_NM = {"nm": 1.0, "µm": 1e3, "μm": 1e3, "um": 1e3, "micron": 1e3, "microns": 1e3,
                "Å": 0.1, "A": 0.1, "angstrom": 0.1, "pm": 1e-3, "mm": 1e6, "m": 1e9}


def length_to_nm(unit, what="length"):
    """Factor that converts a length in ``unit`` to nm.

    Parameters
    ----------
    unit : str
        A key of :data:`LENGTH_TO_NM` (e.g. ``"nm"``, ``"µm"``, ``"Å"``).
    what : str
        Names the quantity in the error message.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``unit`` is not a known length unit.
    """
    key = str(unit).strip()
    if key not in LENGTH_TO_NM:
        raise ValueError(f"{what}: unknown length unit {unit!r}; use one of "
                         f"{', '.join(LENGTH_TO_NM)}")
    return LENGTH_TO_NM[key]
