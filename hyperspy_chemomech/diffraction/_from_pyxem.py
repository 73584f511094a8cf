"""pyxem strain results -> StrainField (the signal face of :mod:`hyperspy_chemomech.fields._pyxem`)."""


def from_pyxem(signal, vector_order="yx", scan_rotation=0.0, flip=False):
    """Convert a pyxem ``StrainMap`` or ``DisplacementGradientMap`` into a StrainField.

    Parameters
    ----------
    signal : pyxem StrainMap ``(4 | x, y)`` or DisplacementGradientMap ``(x, y | 3, 3)``
        The result of pyxem's ``DiffractionVectors.get_strain_maps`` or
        ``get_DisplacementGradientMap``, lazy or not. Its scan axes must be
        calibrated in a length unit.
    vector_order : {"yx", "xy"}
        Column order of the diffraction vectors pyxem fitted; "yx" (ky, kx) is
        what ``Diffraction2D.get_diffraction_vectors`` produces.
    scan_rotation : float
        Angle (rad) of the detector kx axis in the image frame, +x toward +y.
    flip : bool
        Detector ky mirrored relative to scan y.

    Returns
    -------
    StrainField
        e11 = du_x/dx, e22 = du_y/dy, tensor shear e12, rotation theta (rad,
        +x toward +y) in the image frame; NaN where pyxem had no fit.

    Raises
    ------
    TypeError
        ``signal`` is not a HyperSpy signal (e.g. a plain array).
    ValueError
        Neither layout above, uncalibrated scan axes, a bad ``vector_order``.

    Notes
    -----
    The conversion is exact (no small-strain approximation), see the module
    docstring; to first order it is ``(e22, e11, -e12, -theta)`` of pyxem's maps.
    """
    from ..signals import StrainField

    return StrainField.from_pyxem(signal, vector_order=vector_order,
                                  scan_rotation=scan_rotation, flip=flip)
