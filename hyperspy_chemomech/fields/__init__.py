"""The ground every engine stands on: conventions and operators written once.

- component order and signs, displacement gradient <-> (e11, e22, e12, theta)
  (:mod:`._components`);
- in-plane tensor rotations and mirrors between frames (:mod:`._frames`);
- length units (:mod:`._units`);
- masked, NaN-aware smoothing and pooling (:mod:`._smoothing`);
- the Nye tensor and the 2D incompatibility of a distortion map (:mod:`._nye`);
- the analytic (Volterra) field of edge dislocations (:mod:`._volterra`);
- the input checks shared by the strain fits (:mod:`._inputs`);
- pyxem's strain conventions converted to ours (:mod:`._pyxem`).

Plain numpy/scipy; nothing here imports another part of the package.
"""

from .._utils import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    submod_attrs={
        "_components": ["COMPONENTS", "LAW_COMPONENTS", "STRESS_COMPONENTS", "as_strain",
                        "components_from_gradient", "gradient_from_components",
                        "gradient_from_reciprocal"],
        "_frames": ["detector_to_image", "orthogonal_part", "rotate_gradient", "rotate_strain",
                    "rotation_2d", "transform_strain_map", "transform_symmetric"],
        "_units": ["LENGTH_TO_NM", "length_to_nm"],
        "_smoothing": ["FWHM_PER_SIGMA", "masked_gaussian", "pool"],
        "_nye": ["corner_gradient", "corners_to_pixels", "distortion", "incompatibility",
                 "nye_tensor", "pixel_size_pair", "smooth_in_mask", "valid_pixels"],
        "_volterra": ["dislocation_strain", "edge_dislocation_gradient"],
        "_pyxem": ["pyxem_strain_to_tensor", "pyxem_tensor_to_gradient", "simulated_strain_truth"],
        "_inputs": ["MAX_ABS_STRAIN", "MIN_BODY_PIXELS", "require_real",
                    "validate_strain_composition"],
    },
)
