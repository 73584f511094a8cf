"""Composition fields X(r) in [0, 1] with known truth: two-phase, core-shell, stripes, smooth."""

import numpy as np
from scipy import ndimage


def _smooth_random(shape, length, rng):
    """Zero-mean, unit-variance Gaussian random field with correlation length ``length`` px."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=length, mode="reflect")
    f -= f.mean()
    sd = f.std()
    return f / sd if sd > 0 else f


def _tanh_profile(distance, width):
    """0..1 profile across an interface at distance 0 with 10-90 % width ``width`` px."""
    if width <= 0:
        return (distance > 0).astype(float)
    # tanh(z) goes 10 % -> 90 % over z in [-1.0986, 1.0986]
    return 0.5 * (1.0 + np.tanh(distance * 2.1972 / width))


def composition_field(mask, kind="two_phase", interface_width=6.0, seed=None,
                      domain_size=None, x_low=0.05, x_high=0.95, fraction=0.5):
    """A composition map X(r) on a particle mask, NaN outside.

    Parameters
    ----------
    mask : array_like of bool, shape (ny, nx)
        The particle.
    kind : {"two_phase", "core_shell", "stripes", "smooth"}
        ``two_phase``: Li-rich and Li-poor domains of random shape (a level set of a
        smooth random field); ``core_shell``: Li-poor core, Li-rich shell;
        ``stripes``: alternating domains along x; ``smooth``: a smooth random field
        spanning the range (no sharp interface).
    interface_width : float
        10-90 % width of the interfaces (px).
    seed : int or numpy.random.Generator, optional
    domain_size : float, optional
        Typical domain size (px); default a fifth of the particle's size.
    x_low, x_high : float
        Compositions of the two phases (in [0, 1]).
    fraction : float
        Area fraction of the Li-rich phase (two_phase, core_shell).

    Returns
    -------
    numpy.ndarray, shape (ny, nx)
        X in [x_low, x_high] inside the particle, NaN outside.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2 or not mask.any():
        raise ValueError("mask must be a 2D boolean array with at least one True pixel")
    if not (0 <= x_low <= 1 and 0 <= x_high <= 1):
        raise ValueError("x_low and x_high must lie in [0, 1]")
    rng = np.random.default_rng(seed)
    ys, xs = np.nonzero(mask)
    size = max(np.ptp(ys) + 1, np.ptp(xs) + 1)
    domain_size = size / 5 if domain_size is None else float(domain_size)
    ny, nx = mask.shape

    if kind == "two_phase":
        f = _smooth_random(mask.shape, domain_size / 2.5, rng)
        level = np.quantile(f[mask], 1 - fraction)
        # distance to the level set, approximated with the field's local gradient
        gy, gx = np.gradient(f)
        grad = np.hypot(gx, gy) + 1e-12
        phi = _tanh_profile((f - level) / grad, interface_width)
    elif kind == "core_shell":
        depth = ndimage.distance_transform_edt(mask)
        edge = np.quantile(depth[mask], fraction)
        phi = _tanh_profile(edge - depth, interface_width)
    elif kind == "stripes":
        x = np.arange(nx)[None, :] * np.ones((ny, 1))
        phase = rng.uniform(0, 2 * np.pi)
        s = np.sin(2 * np.pi * x / (2 * domain_size) + phase)
        phi = _tanh_profile(s * domain_size / np.pi, interface_width)
    elif kind == "smooth":
        f = _smooth_random(mask.shape, domain_size / 2, rng)
        lo, hi = np.quantile(f[mask], [0.02, 0.98])
        phi = np.clip((f - lo) / (hi - lo), 0, 1)
    else:
        raise ValueError(
            f"unknown composition kind {kind!r}; use two_phase, core_shell, stripes or smooth"
        )
    X = x_low + (x_high - x_low) * phi
    return np.where(mask, X, np.nan)
