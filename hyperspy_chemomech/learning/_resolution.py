"""Resolution matching: bring sharp strain maps to the composition map's resolution.

(The masked blur and pooling it uses live in :mod:`hyperspy_chemomech.fields`.)

A composition map from X-ray spectro-microscopy is several times blurrier than a
4D-STEM strain map. The model's prediction S[eps0(X_blur)] is then itself at the
X-ray resolution (S commutes with a convolution away from the edges), so the
measured strain is blurred with the same point-spread function before the fit.
"""

import numpy as np


def noise_level(field, mask):
    """Robust estimate of white-noise standard deviation in a 2D map.

    Uses the median absolute value of a discrete Laplacian inside the mask, which
    is insensitive to smooth signal and to a few outliers (dislocation cores).

    Parameters
    ----------
    field : numpy.ndarray, shape (ny, nx)
    mask : numpy.ndarray of bool, shape (ny, nx)

    Returns
    -------
    float
        Noise standard deviation, in the units of ``field``.
    """
    f = np.asarray(field, dtype=float)
    lap = (4 * f[1:-1, 1:-1] - f[:-2, 1:-1] - f[2:, 1:-1] - f[1:-1, :-2] - f[1:-1, 2:])
    inner = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    v = lap[inner & np.isfinite(lap)]
    if v.size < 10:
        return float("nan")
    # Laplacian of white noise has std sqrt(20) sigma; MAD -> std factor 1.4826
    return float(1.4826 * np.median(np.abs(v - np.median(v))) / np.sqrt(20.0))
