"""The design of the strain-gap fit: forward responses, rows and columns, pooled grids.

With eps0(X) = sum_k theta_k phi_k(X) per crystal-frame component, the mechanics
engine gives the forward response S[phi_k(X)] (total strain and lattice rotation
of the particle) once per basis function, from one factorisation. Each
(component, pixel) datum is a row of a linear least-squares problem whose
columns are those responses, the reference offsets and the nuisance fields.
"""

import numpy as np

from ..fields import masked_gaussian, pool
from ._law import law_columns
from ._resolution import FourierMaskedBlur


def eigenstrain_fields(basis, X, mask, n_comp, crystal_angle):
    """Image-frame eigenstrain of each (component, basis function): (n_comp*d, 3, ny, nx).

    Parameters
    ----------
    basis : LawBasis
    X : numpy.ndarray, shape (ny, nx)
        Composition (fraction) in the body.
    mask : numpy.ndarray of bool, shape (ny, nx)
    n_comp : int
        Crystal components: [100], [001] (, tensor shear).
    crystal_angle : float
        Angle from +x to [100] (rad), toward +y.
    """
    from ..fields import rotate_strain

    phi = basis(np.where(mask, X, 0.0))  # (d, ny, nx)
    d = basis.n
    out = np.zeros((n_comp * d, 3) + X.shape)
    for c in range(n_comp):
        crystal = np.zeros((d, 3) + X.shape)
        crystal[:, c] = phi  # c = 0: [100], 1: [001], 2: tensor shear
        out[c * d:(c + 1) * d] = rotate_strain(crystal, crystal_angle, axis=1)
    out[:, :, ~mask] = 0.0
    return out


def forward_responses(solver, eig, show_progressbar):
    """Forward responses (n, 4, ny, nx): total strain and rotation of each eigenstrain."""
    return solver.solve(eig, show_progressbar=show_progressbar).strain_and_rotation


class Design:
    """Rows (component, pixel) of the least-squares problem at one resolution.

    Rows run block by block (spatial blocks), so that per-block Gram matrices
    (:class:`~._fit.BlockGrams`) are sums over contiguous slices. ``A`` is
    column-major: each column is filled by one gather. Its columns are the law's
    responses, one reference offset per data component, then the nuisance fields.
    """

    def __init__(self, data, responses, mask, comps, blocks, variance=None, extra=None,
                 weight=None):
        npix = mask.size
        cidx = np.asarray(comps)
        # (component, pixel) of every valid datum, as one flat index into (4, ny, nx)
        flat = np.concatenate([c * npix + np.flatnonzero(mask & np.isfinite(data[c]))
                               for c in comps])
        pix = flat % npix
        flat = flat[np.argsort(blocks.ravel()[pix], kind="stable")]
        pix = flat % npix
        self.flat = flat  #: flat index into (4, ny, nx) of each row
        self.group = blocks.ravel()[pix]
        self.comp = np.searchsorted(cidx, flat // npix)
        self.y = data.ravel()[flat]
        w0 = None
        if variance is not None:
            w0 = 1.0 / np.maximum(variance.ravel()[flat], 1e-30)
        if weight is not None:  # pooled pixels: weighted by their fraction in the body
            wp = np.broadcast_to(weight, data.shape).ravel()[flat]
            w0 = wp if w0 is None else w0 * wp
        self.w0 = w0
        n_resp = responses.shape[0]
        n_extra = 0 if extra is None else extra.shape[0]
        n_off = len(comps)
        A = np.empty((flat.size, n_resp + n_off + n_extra), order="F")
        self.A = A
        self.set_responses(responses)
        A[:, n_resp:n_resp + n_off] = self.comp[:, None] == np.arange(n_off)  # references
        for k in range(n_extra):
            A[:, n_resp + n_off + k] = extra[k].ravel()[flat]
        self.n_resp, self.n_off = n_resp, n_off

    @property
    def n_nuisance(self):
        """Columns after the law's: reference offsets and nuisance fields."""
        return self.A.shape[1] - self.n_resp

    def set_responses(self, responses):
        """Refill the law's columns (same rows), e.g. with responses blurred differently."""
        for k in range(responses.shape[0]):
            self.A[:, k] = responses[k].ravel()[self.flat]

    def columns(self, n_comp, d_max, d):
        """Columns for degree d (nested basis), plus the reference offsets and nuisance fields."""
        return np.r_[law_columns(n_comp, d_max, d), np.arange(self.n_resp, self.A.shape[1])]


def pool_factor(sigma):
    """Pooling factor for maps compared after a Gaussian blur of ``sigma`` px.

    A pooled grid keeps >= 0.75 pooled px of blur: the box stays narrow next to
    the Gaussian, and it is applied to data and model alike.
    """
    return 1 if sigma < 1.5 else 2 if sigma < 4.5 else 4


class PooledGrid:
    """Strain, responses and nuisance fields on a grid pooled by ``factor``.

    A Gaussian of sigma px on the fine grid acts as one of sigma / factor px here;
    data and model are pooled by the same (linear, masked-mean) operator, so the
    comparison stays consistent, at 1/factor^2 of the rows and 1/factor^3 of the
    blur cost.
    """

    def __init__(self, strain, responses, extra, mask, blocks, factor, strain_weight=None,
                 body=None, fine=None):
        f = int(factor)
        self._fine_mask = mask if fine is None else fine._fine_mask
        self._from = (fine, f, mask, body)  # how model fields reach this grid (pool_model)
        self._model_blur = None  # made on the first blur of the model fields
        self.factor = f * (1 if fine is None else fine.factor)  # fine px per pixel here
        if f == 1:
            self.strain, self.responses, self.extra = strain, responses, extra
            self.mask, self.blocks, self.weight = mask, blocks, strain_weight
            self.body = body
            return
        self.strain, w, self.mask = pool(strain, mask, f, strain_weight)
        self.weight = np.nan_to_num(w)
        self.body = pool(np.ones(mask.shape), mask, f, body, finite=True)[1]  # body fraction
        self.responses = pool(responses, mask, f, body, finite=True)[0]
        self.extra = None if extra is None else pool(extra, mask, f, body, finite=True)[0]
        # each pooled pixel keeps the lowest block label among its body pixels
        big = blocks.max() + 1
        b = np.where(mask, blocks, big)
        ny, nx = mask.shape
        b = np.pad(b, ((0, -ny % f), (0, -nx % f)), constant_values=big)
        b = b.reshape(b.shape[0] // f, f, b.shape[1] // f, f).min(axis=(1, 3))
        self.blocks = np.where(self.mask, b, -1)

    def pool(self, fields):
        """Masked mean of full-resolution (..., ny, nx) maps over this grid's pixels."""
        if self.factor == 1:
            return fields
        return pool(fields, self._fine_mask, self.factor)[0]

    def pool_model(self, fields):
        """Full-resolution model fields (finite on the body) pooled as this grid's responses."""
        fine, f, mask, body = self._from
        src = fields if fine is None else fine.pool_model(fields)
        return src if f == 1 else pool(src, mask, f, body, finite=True)[0]

    def coarsen(self, factor):
        """This grid pooled again by ``factor``."""
        return PooledGrid(self.strain, self.responses, self.extra, self.mask, self.blocks,
                          factor, strain_weight=self.weight, body=self.body, fine=self)

    def blur(self, fields, sigma):
        """Masked Gaussian of ``sigma`` fine-grid px of data maps (NaN = missing) on this grid."""
        if fields is None or sigma <= 0:
            return fields
        return masked_gaussian(fields, self.mask, sigma / self.factor, weight=self.weight)

    def blur_model(self, name, sigma):
        """Masked Gaussian of ``sigma`` fine-grid px of ``"responses"`` or ``"extra"`` (0 off-body).

        Blurred with the data's weights (so a blurred datum and its prediction
        average the same pixels), by :class:`~._resolution.FourierMaskedBlur`.
        """
        fields = getattr(self, name)
        if fields is None or sigma <= 0:
            return fields
        if self._model_blur is None:
            self._model_blur = FourierMaskedBlur(self.mask, self.weight)
        return self._model_blur(name, fields, sigma / self.factor)

    def design(self, data, responses, comps, rows=None, variance=None, extra=None):
        """The :class:`Design` of ``data`` (on this grid) against model fields.

        ``rows`` (default: the body) restricts the pixels that give rows.
        """
        return Design(data, responses, self.mask if rows is None else rows, comps, self.blocks,
                      variance, extra, weight=self.weight)


class PooledGrids:
    """The full-resolution maps and, made once each, their pooled grids."""

    def __init__(self, strain, responses, extra, mask, blocks):
        self._maps = (strain, responses, extra, mask, blocks)
        self._grids = {}

    def at(self, sigma):
        """The grid on which maps blurred by ``sigma`` (px) are compared."""
        f = pool_factor(sigma)
        if f not in self._grids:  # 4 x 4 from the 2 x 2 grid (a quarter of the work)
            self._grids[f] = (PooledGrid(*self._maps, f) if f <= 2 else
                              self.at(2).coarsen(f // 2))
        return self._grids[f]
