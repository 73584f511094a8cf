"""The crystal frame that travels with a strain field: ``metadata.Chemomech.frame``.

A reader (:func:`~hyperspy_chemomech.io.load_correlative_mat`), the diffraction
step (:func:`~hyperspy_chemomech.diffraction.strain_from_diffraction`) or the user
stores here what is known of the crystal frame of the map; the learning and the
decomposition use it when no ``crystal_angle`` is given. Items of the node:

``crystal_angle``
    Angle (rad) from the image +x axis to the crystal [100] direction, toward +y,
    in [-pi/2, pi/2) (an axis: [100] and [-100] are one).
``axis_100``
    ``"x"`` or ``"y"``: the map axis nearest to [100].
``mirrored``
    Whether the crystal (a, c) axes are a mirror image of the image (x, y) axes
    (``"unknown"`` when nothing says). No parameter of the mechanics needs it
    (orthotropic stiffness, diagonal eigenstrain): recorded for the record.
``source``
    Where the angle comes from (e.g. ``"file rot"``, ``"data alone"``,
    ``"diffraction"``, ``"given"``).
``ambiguous``
    True when the data could not tell the candidate frames apart.
``candidates``, ``scores``
    The frames that were compared and their compatibility indices (lower is more
    compatible), when the frame was chosen from the data.

Other items say how the components were read (``reading``) and by whom.
"""

import warnings

import numpy as np

FRAME_NODE = "Chemomech.frame"


def axis_angle(angle):
    """An axis angle folded into [-pi/2, pi/2) (rad)."""
    return float((float(angle) + np.pi / 2) % np.pi - np.pi / 2)


def set_frame(signal, crystal_angle, source, mirrored="unknown", **details):
    """Store the crystal frame of ``signal`` in ``metadata.Chemomech.frame``.

    Parameters
    ----------
    signal : StrainField
    crystal_angle : float
        Angle (rad) from +x to [100], toward +y.
    source : str
        Where it comes from.
    mirrored : bool or "unknown"
    **details
        Further items (numbers, strings, lists); None becomes "None".
    """
    a = axis_angle(crystal_angle)
    node = dict(crystal_angle=a, axis_100="x" if abs(np.cos(a)) >= abs(np.sin(a)) else "y",
                mirrored=mirrored if isinstance(mirrored, str) else bool(mirrored),
                source=str(source))
    node.update({k: ("None" if v is None else v) for k, v in details.items()})
    if signal.metadata.has_item(FRAME_NODE):
        signal.metadata.Chemomech.del_item("frame")
    signal.metadata.set_item(FRAME_NODE, node)
    return node


def get_frame(signal):
    """The stored frame as a dict, or None."""
    if not signal.metadata.has_item(FRAME_NODE):
        return None
    node = signal.metadata.get_item(FRAME_NODE)
    return node.as_dictionary() if hasattr(node, "as_dictionary") else dict(node)


def resolve_crystal_angle(signal, crystal_angle, what="learn_eigenstrain"):
    """The crystal angle to use: the given one, else the stored one, else 0.

    A given angle whose axis differs from the stored one warns, naming both.

    Returns
    -------
    angle : float
        Radians.
    source : str
        ``"given"``, ``"metadata (<source>)"`` or ``"default 0 (no frame stored)"``.
    """
    frame = get_frame(signal)
    stored = None if frame is None else float(frame["crystal_angle"])
    if crystal_angle is None:
        if stored is None:
            return 0.0, "default 0 (no frame stored)"
        return stored, f"metadata ({frame.get('source', 'unknown')})"
    given = float(crystal_angle)
    if not np.isfinite(given):
        raise ValueError(f"crystal_angle must be a finite number of radians, got {crystal_angle!r}")
    if stored is not None and abs(axis_angle(given - stored)) > 1e-6:
        warnings.warn(
            f"{what}: crystal_angle={given:.6g} rad ({np.rad2deg(given):.2f} deg) contradicts the "
            f"frame stored with the strain field, {stored:.6g} rad ({np.rad2deg(stored):.2f} deg, "
            f"from {frame.get('source', 'unknown')}; metadata.Chemomech.frame); using the given "
            "value", UserWarning, stacklevel=3)
    return given, "given"
