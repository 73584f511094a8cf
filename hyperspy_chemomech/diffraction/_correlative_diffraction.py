"""CorrelativeDiffraction2D: a pyxem ElectronDiffraction2D that gives its strain field and
registration image.

signal_type ``correlative_diffraction``. HyperSpy imports this module (and so pyxem)
only when a signal is given that type: ``dp.set_signal_type("correlative_diffraction")``
on a pyxem ``ElectronDiffraction2D`` / ``Diffraction2D`` or on a plain 4D Signal2D.
Every pyxem method is kept (it is a subclass); two are added:
:meth:`~CorrelativeDiffraction2D.get_strain_field` and
:meth:`~CorrelativeDiffraction2D.get_registration_image`.
"""

import numpy as np
from pyxem.signals import ElectronDiffraction2D, LazyElectronDiffraction2D

from ._strain_from_diffraction import _detector_axes, _scan_axes, strain_from_diffraction

_MAX_MEAN_PATTERNS = 256


def _mean_pattern(dp):
    """Mean of up to 256 patterns spread over the scan (float array (rows, cols))."""
    nav = dp.axes_manager.navigation_shape[::-1]  # (ny, nx)
    n = int(np.prod(nav))
    step = max(1, int(np.ceil(n / _MAX_MEAN_PATTERNS)))
    flat = dp.data.reshape((n,) + dp.data.shape[-2:])[::step]
    mean = flat.mean(axis=0)
    return np.asarray(mean.compute() if hasattr(mean, "compute") else mean, dtype=float)


def direct_beam_radius(dp):
    """Radius (detector px) of the direct beam in the mean pattern.

    The beam is the connected region above half its peak around the nominal
    direct-beam position; the radius is that of a disk of the same area.
    """
    from scipy import ndimage

    mean = _mean_pattern(dp)
    shape, _, center, _ = _detector_axes(dp)
    background = np.median(mean)
    # the brightest pixel within 8 px of the nominal centre (the beam may be off it)
    rows, cols = np.indices(mean.shape)
    near = np.hypot(rows - center[0], cols - center[1]) <= 8
    peak = np.unravel_index(np.argmax(np.where(near, mean, -np.inf)), mean.shape)
    if not mean[peak] > background:
        raise ValueError("no direct beam found near the detector centre of the mean pattern; "
                         "give disk_radius / inner_radius (detector px)")
    labels, _ = ndimage.label(mean > background + 0.5 * (mean[peak] - background))
    area = np.count_nonzero(labels == labels[peak])
    return float(np.sqrt(area / np.pi))


class CorrelativeDiffraction2D(ElectronDiffraction2D):
    """4D-STEM data ``(x, y | kx, ky)`` of a particle seen by X-rays too.

    A pyxem :class:`~pyxem.signals.ElectronDiffraction2D` (every pyxem method is
    available) that also gives the two things the correlative workflow needs from
    it: the strain field and the image to register the X-ray map onto.

    Examples
    --------
    >>> dp.set_signal_type("correlative_diffraction")  # doctest: +SKIP
    >>> strain = dp.get_strain_field(reference=((0, 4), (0, 4)))  # doctest: +SKIP
    >>> tr = hcm.register(moving=thickness, fixed=dp.get_registration_image())  # doctest: +SKIP
    """

    _signal_type = "correlative_diffraction"

    def get_strain_field(self, reference="median", disk_radius=None, **kwargs):
        """The strain field of the scan: :func:`~hyperspy_chemomech.diffraction.strain_from_diffraction`.

        Parameters
        ----------
        reference : "median", bool array (ny, nx), ROI or (y, x) region
            The strain-free region (see ``strain_from_diffraction``).
        disk_radius : float, optional
            Bragg disk radius (detector px). Default: the direct beam's radius in
            the mean pattern (in nano-beam diffraction every disk is the probe's).
        **kwargs
            Passed to ``strain_from_diffraction`` (basis, scan_rotation, flip,
            threshold, tol, min_disks, show_progressbar).

        Returns
        -------
        StrainField
            In the image frame (x = scan column axis), nm, NaN where a fit failed;
            the disk radius used is in ``metadata.Chemomech.strain_from_diffraction``.
        """
        if disk_radius is None:
            disk_radius = direct_beam_radius(self)
        return strain_from_diffraction(self, reference=reference, disk_radius=disk_radius,
                                       **kwargs)

    def get_registration_image(self, inner_radius=None, outer_radius=None):
        """Virtual annular dark-field image on the scan grid, to register X-ray maps onto.

        The intensity scattered outside the direct beam (Bragg disks, diffuse
        scattering): bright where the particle is, dark on vacuum, on exactly the
        grid of :meth:`get_strain_field` -- the ``fixed`` image of
        :func:`hyperspy_chemomech.register`.

        Parameters
        ----------
        inner_radius : float, optional
            Inner radius of the annulus (detector px) around the direct beam.
            Default 1.5 times the direct beam's radius (clear of its edge).
        outer_radius : float, optional
            Outer radius (detector px); default the largest circle inside the
            detector.

        Returns
        -------
        hyperspy Signal2D
            ``(| x, y)``, scan axes in nm, title "Virtual annular dark field";
            ``metadata.Chemomech.get_registration_image`` holds the radii (px) and
            the centre (detector row, column) used.

        Notes
        -----
        Computed with pyxem's ``get_integrated_intensity`` and a HyperSpy
        ``CircleROI`` in the detector's calibrated units (lazy data are computed).
        """
        import hyperspy.api as hs

        from .._metadata import record, set_image_axes

        _, scale, offset = _scan_axes(self)
        shape, kscale, center, unit = _detector_axes(self)
        if inner_radius is None:
            inner_radius = 1.5 * direct_beam_radius(self)
        if outer_radius is None:
            outer_radius = min(center[0], center[1], shape[0] - 1 - center[0],
                               shape[1] - 1 - center[1])
        inner_radius, outer_radius = float(inner_radius), float(outer_radius)
        if not 0 <= inner_radius < outer_radius:
            raise ValueError(f"need 0 <= inner_radius < outer_radius, got {inner_radius} and "
                             f"{outer_radius} px")
        kx, ky = self.axes_manager.signal_axes
        # CircleROI works in calibrated units: px -> detector units via the kx scale
        roi = hs.roi.CircleROI(cx=kx.offset + center[1] * kx.scale,
                               cy=ky.offset + center[0] * ky.scale,
                               r=outer_radius * kx.scale, r_inner=inner_radius * kx.scale)
        adf = self.get_integrated_intensity(roi)
        if adf._lazy:
            adf.compute()
        img = hs.signals.Signal2D(np.asarray(adf.data, dtype=float))
        set_image_axes(img, scale=scale, units="nm", offset=offset)
        img.metadata.General.title = "Virtual annular dark field"
        record(img, "get_registration_image", inner_radius_px=inner_radius,
               outer_radius_px=outer_radius, center_px=np.asarray(center, float),
               detector_unit=unit)
        return img


class LazyCorrelativeDiffraction2D(LazyElectronDiffraction2D, CorrelativeDiffraction2D):
    """Lazy (dask) version of :class:`CorrelativeDiffraction2D`."""

    _lazy = True
