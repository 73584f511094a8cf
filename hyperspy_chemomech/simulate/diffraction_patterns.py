"""Synthetic 4D-STEM (nano-beam diffraction) of a particle with a known strain field."""

import numpy as np

from ..diffraction import disk_image
from ..fields import components_from_gradient, gradient_from_components
from .shapes import platelet_mask


def default_gradient_field(mask, amplitude=5e-3):
    """A smooth displacement-gradient field that vanishes on the left of the particle.

    Parameters
    ----------
    mask : numpy.ndarray of bool, shape (ny, nx)
        The particle.
    amplitude : float
        Peak strain (dimensionless); the rotation peaks at 0.8 x ``amplitude`` rad.

    Returns
    -------
    H : numpy.ndarray, shape (ny, nx, 2, 2)
        ``H[..., i, j] = du_i/dx_j`` (i, j = x, y), zero outside the particle and on
        its left third (the natural reference region, see ``reference_mask``).
    reference_mask : numpy.ndarray of bool, shape (ny, nx)
        Particle pixels where ``H`` is exactly zero.
    """
    ny, nx = mask.shape
    ys, xs = np.nonzero(mask)
    x0, x1 = xs.min(), xs.max()
    y0, y1 = ys.min(), ys.max()
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    start = x0 + (x1 - x0) / 3.0
    s = np.clip((x - start) / max(x1 - start, 1.0), 0.0, 1.0)
    f = s * s * (3 - 2 * s)  # smoothstep: zero, with zero slope, left of `start`
    yn = 2 * (y - (y0 + y1) / 2) / max(y1 - y0, 1)
    a = amplitude
    e11 = a * f
    e22 = -0.6 * a * f * (1 + 0.5 * yn)
    e12 = 0.4 * a * f * yn
    theta = 0.8 * a * f * (1 - 0.5 * yn)
    H = gradient_from_components(e11, e22, e12, theta)
    H[~mask] = 0.0
    return H, mask & (f == 0)


def synthetic_4dstem(scan_shape=(24, 24), detector_shape=(128, 128), scan_step=2.0,
                     basis=((0.10, 0.0), (0.0, 0.125)), crystal_angle=0.3,
                     k_scale=0.006, disk_radius=2.0, dose=1e4, gradient=None,
                     mask=None, amplitude=5e-3, direct_beam=1.0, debye_waller=0.5,
                     beam_shift=0.0, background=0.0, scan_rotation=0.0, flip=False, noise=True,
                     seed=0, lazy=False, signal_type="electron_diffraction"):
    """Kinematic nano-beam diffraction patterns of a strained, rotated particle.

    Disks are uniform and integrated over each detector pixel's area.

    Each scan position inside the particle shows the direct beam and the Bragg
    disks of the local lattice ``g = F^-T g_ref`` (F = I + H the local deformation
    gradient); outside the particle only the direct beam. Every pattern holds
    ``dose`` electrons on average, with Poisson noise.

    Parameters
    ----------
    scan_shape : (int, int)
        Scan (ny, nx).
    detector_shape : (int, int)
        Detector (rows, columns) in px.
    scan_step : float
        Scan step (nm).
    basis : array_like, shape (2, 2)
        Reference reciprocal basis vectors as rows (g1, g2) in the crystal frame (1/Å);
        the default is a rectangular lattice of spacings 10 Å and 8 Å.
    crystal_angle : float
        Angle (rad) from the image +x axis to g1, toward +y.
    k_scale : float
        Detector pixel size (1/Å per px).
    disk_radius : float
        Disk radius (px).
    dose : float
        Mean electrons per pattern.
    gradient : numpy.ndarray, shape (ny, nx, 2, 2), optional
        Displacement gradient ``H[..., i, j] = du_i/dx_j``; default
        :func:`default_gradient_field` with ``amplitude``.
    mask : numpy.ndarray of bool, optional
        The particle; default a hexagonal platelet.
    amplitude : float
        Peak strain of the default field.
    direct_beam : float
        Direct-beam intensity relative to the strongest Bragg disk at g -> 0.
    debye_waller : float
        Bragg intensities fall as ``exp(-(|g| / debye_waller)**2)``, ``|g|`` in 1/Å.
    beam_shift : float
        Descan: the direct beam moves linearly across the scan by up to this many px.
    background : float
        Fraction of each pattern's electrons in a diffuse halo around the direct
        beam, ``1 / (1 + (k / k0)**2)`` with ``k0`` a quarter of the detector width.
    scan_rotation : float
        Angle (rad) of the detector column axis (kx) in the image frame, toward +y.
    flip : bool
        The detector row axis (ky) is mirrored relative to the image y axis.
    noise : bool
        Poisson noise (else the expected counts).
    seed : int, optional
    lazy : bool
        Return a lazy (dask) signal.
    signal_type : str
        ``"electron_diffraction"`` (pyxem's ElectronDiffraction2D; importing pyxem
        costs ~30 s) or ``""`` for a plain HyperSpy Signal2D.

    Returns
    -------
    dp : hyperspy Signal2D, shape (ny, nx | rows, columns)
        Navigation axes x, y in nm; signal axes kx, ky in 1/Å, zero at the
        nominal direct beam.
    truth : dict
        ``gradient`` (ny, nx, 2, 2), ``components`` (4, ny, nx): e11, e22, e12,
        theta (NaN outside the particle), ``mask``, ``reference_mask`` (where the
        default field is zero), ``basis`` (2, 2): rows g1, g2 in the image frame
        (1/Å), ``crystal_angle``, ``center`` (row, column) px of the direct beam
        at the first scan position.

    Examples
    --------
    >>> from hyperspy_chemomech.simulate import synthetic_4dstem
    >>> dp, truth = synthetic_4dstem(scan_shape=(8, 8), signal_type="")
    >>> dp.data.shape
    (8, 8, 128, 128)
    """
    import hyperspy.api as hs

    ny, nx = (int(n) for n in scan_shape)
    rows, cols = (int(n) for n in detector_shape)
    if not 0.0 <= background < 1.0:
        raise ValueError(f"background is a fraction of the dose in [0, 1), got {background}")
    rng = np.random.default_rng(seed)
    if mask is None:
        mask = platelet_mask((ny, nx), kind="hexagon", fill=0.8)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (ny, nx):
        raise ValueError(f"mask shape {mask.shape} differs from scan_shape {(ny, nx)}")
    reference_mask = np.zeros_like(mask)
    if gradient is None:
        gradient, reference_mask = default_gradient_field(mask, amplitude)
    gradient = np.asarray(gradient, dtype=float)
    if gradient.shape != (ny, nx, 2, 2):
        raise ValueError(f"gradient must have shape {(ny, nx, 2, 2)}, got {gradient.shape}")

    c, s = np.cos(crystal_angle), np.sin(crystal_angle)
    rot = np.array([[c, -s], [s, c]])
    g_img = np.asarray(basis, dtype=float) @ rot.T  # rows g1, g2 in the image frame
    # image frame -> detector frame (kx, ky): inverse of g_img = R(phi) diag(1, +-1) g_det
    cp, sp = np.cos(scan_rotation), np.sin(scan_rotation)
    Q = np.array([[cp, -sp], [sp, cp]]) @ np.diag([1.0, -1.0 if flip else 1.0])
    Qinv = np.linalg.inv(Q)

    gmax = 0.5 * min(rows, cols) * k_scale * 1.6
    nmax = int(np.ceil(gmax / min(np.hypot(*g_img[0]), np.hypot(*g_img[1])))) + 1
    h, k = np.meshgrid(np.arange(-nmax, nmax + 1), np.arange(-nmax, nmax + 1))
    hk = np.column_stack([h.ravel(), k.ravel()]).astype(float)
    g_ref = hk @ g_img  # (m, 2)
    glen = np.hypot(g_ref[:, 0], g_ref[:, 1])
    bragg = (glen > 0) & (glen < gmax)
    g_ref = g_ref[bragg]
    intens = np.exp(-(np.hypot(g_ref[:, 0], g_ref[:, 1]) / debye_waller) ** 2)
    center0 = np.array([(rows - 1) / 2.0, (cols - 1) / 2.0])

    data = np.empty((ny, nx, rows, cols), dtype=np.float32)
    rr, cc = np.mgrid[0:rows, 0:cols].astype(float)
    eye = np.eye(2)
    for iy in range(ny):
        for ix in range(nx):
            shift = beam_shift * np.array([iy / max(ny - 1, 1), ix / max(nx - 1, 1)])
            ctr = center0 + shift - 0.5 * beam_shift
            if mask[iy, ix]:
                A = np.linalg.inv(eye + gradient[iy, ix]).T  # reciprocal distortion F^-T
                g = g_ref @ A.T @ Qinv.T  # detector frame (kx, ky), 1/Å
                px = np.column_stack([ctr[0] + g[:, 1] / k_scale, ctr[1] + g[:, 0] / k_scale])
                centers = np.vstack([ctr, px])
                weights = np.concatenate([[direct_beam], intens])
            else:
                centers, weights = ctr[None, :], np.array([1.0])
            img = disk_image((rows, cols), centers, disk_radius, weights)
            img *= (1.0 - background) / img.sum()
            if background:
                k2 = ((rr - ctr[0]) ** 2 + (cc - ctr[1]) ** 2) / (0.25 * min(rows, cols)) ** 2
                halo = 1.0 / (1.0 + k2)
                img += background * halo / halo.sum()
            img *= dose
            data[iy, ix] = rng.poisson(img) if noise else img

    dp = hs.signals.Signal2D(data)
    nav = dp.axes_manager.navigation_axes  # (x, y)
    for ax, name in zip(nav, ("x", "y")):
        ax.name, ax.units, ax.scale = name, "nm", float(scan_step)
    sig = dp.axes_manager.signal_axes  # (kx, ky)
    for ax, name, c0 in zip(sig, ("kx", "ky"), (center0[1], center0[0])):
        ax.name, ax.units, ax.scale, ax.offset = name, "1/Å", float(k_scale), -c0 * k_scale
    dp.metadata.General.title = "Synthetic 4D-STEM"
    if signal_type:
        dp.set_signal_type(signal_type)
    if lazy:
        dp = dp.as_lazy()
    comps = components_from_gradient(gradient)
    comps[:, ~mask] = np.nan
    truth = {
        "gradient": gradient, "components": comps, "mask": mask,
        "reference_mask": reference_mask, "basis": g_img,
        "crystal_angle": float(crystal_angle),
        "center": center0 - 0.5 * beam_shift,
    }
    return dp, truth
