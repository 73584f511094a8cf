"""The error model of a CompositionMap, read from what it carries (for ``learn_eigenstrain``)."""

import numpy as np

#: metadata nodes written by get_composition_map and CorrelativeTransform.apply
_MAPS = "Chemomech.composition_maps"
_REG = "Chemomech.registration"


def error_model(composition, value, strain):
    """``composition_uncertainty`` of ``learn_eigenstrain`` as the engine takes it.

    Parameters
    ----------
    composition : CompositionMap
        On the strain grid.
    value : "auto", None, array_like or CompositionErrors
        ``"auto"``: the errors as they were made when the map was resampled by
        :meth:`CorrelativeTransform.apply` (the unmixing's sigma on the X-ray
        grid, resampled by the same transform; the transform's covariance when
        it carries one), else the map's own sigma(X) (independent pixels), else
        none. An array: sigma(X) on the strain grid (independent pixels).
    strain : StrainField
        The strain map (its grid is the target of the resampling).

    Returns
    -------
    CompositionErrors or numpy.ndarray or None
    """
    if value is None or not isinstance(value, str):
        return value
    if value != "auto":
        raise ValueError(f"composition_uncertainty must be 'auto', None, a sigma(X) map or a "
                         f"CompositionErrors, got {value!r}")
    md = composition.metadata
    shape = tuple(strain.axes_manager.signal_shape[::-1])
    if md.has_item(f"{_REG}.source_uncertainty"):
        return _resampled_errors(md.get_item(_REG).as_dictionary(), strain)
    if md.has_item(f"{_MAPS}.uncertainty"):
        sigma = np.asarray(md.get_item(f"{_MAPS}.uncertainty"), float)
        if sigma.shape == tuple(shape):
            return sigma
    return None


def _resampled_errors(node, strain):
    """CompositionErrors redrawn on the X-ray grid and resampled as the map was."""
    from .._metadata import offset_nm, pixel_size_nm
    from ..learning import CompositionErrors
    from ..registration import Grid, resample

    matrix = np.asarray(node["transform"]["matrix"], float)
    src = Grid(tuple(int(v) for v in node["source_shape"]),
               tuple(float(v) for v in node["source_scale_nm"]),
               tuple(float(v) for v in node["source_offset_nm"]))
    dst = Grid(tuple(strain.axes_manager.signal_shape[::-1]), tuple(pixel_size_nm(strain)),
               tuple(offset_nm(strain)))
    order = int(node.get("order", 1))
    cov = node.get("transform_covariance")

    def resample_with(fields, m):
        return resample(fields, src, dst, m, order=order)

    return CompositionErrors(np.asarray(node["source_uncertainty"], float),
                             to_strain=lambda f: resample_with(f, matrix),
                             X_source=np.asarray(node["source_composition"], float),
                             resample_with=resample_with, matrix=matrix,
                             matrix_covariance=None if cov is None else np.asarray(cov, float))
