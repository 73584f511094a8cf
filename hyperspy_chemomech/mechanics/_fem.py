"""Plane linear elasticity with eigenstrain on a particle's pixel grid (bilinear elements).

One 4-node bilinear (Q4) element per material pixel, nodes at the pixel corners. The
element stiffness is integrated with 2x2 Gauss points (exact for a rectangle with
constant stiffness, and free of hourglass modes: the only zero-energy modes of an
element are its three rigid motions); strain, rotation and stress are reported at the
element centroid (one-point evaluation), where bilinear elements are most accurate
(superconvergent for the strain) and where the pixel values of the input maps live.

The eigenstrain is constant per pixel; its equivalent nodal force is
``f_e = integral(B^T D eps0) = A_e * B_c^T D eps0`` (the 2x2 Gauss mean of the
linear-in-xi B over a rectangle equals its centroid value).
"""

from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp

from .._utils import progressbar, show_progressbar_default
from ._factor import GridFactor, PreconditionedFactor, factorize, nested_dissection
from ._frames import rotate_plane_stiffness
from ._stiffness import check_stiffness

# local node order (dy, dx offsets of the pixel's corners): top-left, top-right,
# bottom-right, bottom-left with y along the rows; (xi, eta) natural coordinates.
_CORNERS = np.array([[0, 0], [0, 1], [1, 1], [1, 0]])
_XI = np.array([-1.0, 1.0, 1.0, -1.0])
_ETA = np.array([-1.0, -1.0, 1.0, 1.0])
_GAUSS = np.array([-1.0, 1.0]) / np.sqrt(3.0)
# relative weight of the elastic energy that fixes what centroid data leave undetermined
_GRADIENT_TIKHONOV = 1e-8


def _shape_gradients(xi, eta, dy, dx):
    """dN/dx, dN/dy (4 each) of the bilinear shape functions at (xi, eta)."""
    dndx = _XI * (1 + eta * _ETA) / 4 * (2 / dx)
    dndy = _ETA * (1 + xi * _XI) / 4 * (2 / dy)
    return dndx, dndy


def _b_matrix(xi, eta, dy, dx):
    """Rows: e11, e22, 2 e12 (engineering), theta; columns: ux0, uy0, ux1, ..."""
    dndx, dndy = _shape_gradients(xi, eta, dy, dx)
    b = np.zeros((4, 8))
    b[0, 0::2] = dndx
    b[1, 1::2] = dndy
    b[2, 0::2] = dndy
    b[2, 1::2] = dndx
    b[3, 1::2] = dndx / 2
    b[3, 0::2] = -dndy / 2
    return b


def element_matrices(dy, dx):
    """Element operators of a dy x dx pixel.

    Returns
    -------
    m : numpy.ndarray, shape (3, 3, 8, 8)
        ``K_e = einsum("ij,ijab->ab", D, m)`` for a plane stiffness D (2x2 Gauss).
    bc : numpy.ndarray, shape (4, 8)
        Centroid operator to (e11, e22, 2 e12, theta).
    """
    area = dy * dx
    m = np.zeros((3, 3, 8, 8))
    for xi in _GAUSS:
        for eta in _GAUSS:
            b = _b_matrix(xi, eta, dy, dx)[:3]
            m += np.einsum("ia,jb->ijab", b, b) * (area / 4)
    return m, _b_matrix(0.0, 0.0, dy, dx)


@dataclass
class _Mesh:
    shape: tuple
    pixels: np.ndarray      # flat indices of material pixels (C order)
    piece: np.ndarray       # piece label (0..n_pieces-1) per element
    node_mask: np.ndarray   # (ny+1, nx+1) bool
    node_ids: np.ndarray    # (ny+1, nx+1) int, -1 where inactive
    edofs: np.ndarray       # (n_elem, 8) global dofs
    n_pieces: int


def _pieces(mask, pieces):
    """Label edge-connected pieces; pixels touching only at a corner would form a hinge."""
    labels, n = ndi.label(mask)  # default structure: 4-connectivity
    if n <= 1 or pieces == "each":
        return labels, n
    sizes = np.bincount(labels.ravel())[1:]
    if pieces == "largest":
        keep = np.argmax(sizes) + 1
        return (labels == keep).astype(int), 1
    raise ValueError(
        f"the mask has {n} disconnected pieces (edge-connected; pixels touching only at a "
        f"corner are separate), sizes {sorted(sizes.tolist(), reverse=True)[:10]} px: pass "
        "pieces='largest' to keep the largest one, pieces='each' to solve every piece as a "
        "free body, or clean the mask (e.g. scipy.ndimage.binary_opening)")


def _build_mesh(mask, pieces):
    labels, n = _pieces(mask, pieces)
    ny, nx = mask.shape
    used = labels > 0
    node_label = np.zeros((ny + 1, nx + 1), dtype=int)
    conflict = np.zeros((ny + 1, nx + 1), dtype=bool)
    for di, dj in _CORNERS:
        view = node_label[di:di + ny, dj:dj + nx]
        clash = used & (view > 0) & (view != labels)
        conflict[di:di + ny, dj:dj + nx] |= clash
        view[used] = labels[used]
    if conflict.any():
        i, j = np.argwhere(conflict)[0]
        raise ValueError(
            f"pieces of the mask touch only at corners (e.g. node row {i}, column {j}), which "
            "would act as a hinge: clean the mask or pass pieces='largest'")
    node_mask = node_label > 0
    node_ids = np.full(node_mask.shape, -1, dtype=np.int64)
    node_ids[node_mask] = np.arange(np.count_nonzero(node_mask))
    ii, jj = np.nonzero(used)
    corner = node_ids[ii[:, None] + _CORNERS[:, 0], jj[:, None] + _CORNERS[:, 1]]
    edofs = np.empty((ii.size, 8), dtype=np.int64)
    edofs[:, 0::2] = 2 * corner
    edofs[:, 1::2] = 2 * corner + 1
    return _Mesh((ny, nx), np.ravel_multi_index((ii, jj), mask.shape), labels[ii, jj] - 1,
                 node_mask, node_ids, edofs, n)


def _as_pixel_size(pixel_size):
    if pixel_size is None:
        raise ValueError("pixel_size is required (nm per pixel)")
    p = np.broadcast_to(np.asarray(pixel_size, dtype=float), (2,)) if np.ndim(pixel_size) == 0 \
        else np.asarray(pixel_size, dtype=float)
    if p.shape != (2,) or not np.all(np.isfinite(p)) or np.any(p <= 0):
        raise ValueError(f"pixel_size must be a positive number or (dy, dx) in nm, got {pixel_size!r}")
    return float(p[0]), float(p[1])


class ParticleElasticity:
    """Eigenstrain -> strain, rotation and stress of a free (or clamped) particle.

    Small-strain plane elasticity on the pixel grid of ``mask``: one bilinear element per
    material pixel, nodes at pixel corners, vacuum elsewhere (traction-free edges). The
    stiffness matrix is assembled and factorised once; :meth:`solve` then handles any
    number of eigenstrain fields.

    Parameters
    ----------
    mask : array_like of bool, shape (ny, nx)
        True where there is material.
    pixel_size : float or (float, float)
        Pixel size (nm), one value or (dy, dx) (row, column spacing).
    stiffness : array_like (3, 3), pair of (3, 3), array (ny, nx, 3, 3), callable, or str
        Plane stiffness Q (GPa) in the CRYSTAL frame acting on ``(e11, e22, 2 e12)``
        (engineering shear; see :func:`plane_stiffness`). A pair ``(Q_X0, Q_X1)`` is
        interpolated linearly in ``composition`` per pixel (also as a (2, 3, 3) array);
        a callable maps an array of compositions X to ``(..., 3, 3)``; a per-pixel map is
        used as it is; a material name (``"LiFePO4"``) means its plane-stress stiffness
        with the beam along [010].
    composition : array_like, shape (ny, nx), optional
        X per pixel, needed (finite inside the mask) for composition-dependent stiffness.
    crystal_angle : float or array_like (ny, nx)
        Angle (rad) from image +x to the crystal's first in-plane axis ([100]), toward +y.
    boundary : {"free", "dirichlet"}
        ``"free"``: traction-free everywhere; rigid-body modes are fixed by pinning three
        dofs per piece and then removed (see Notes), so results do not depend on the pins.
        ``"dirichlet"``: displacement prescribed at the particle's boundary nodes (nodes
        touching vacuum or the grid edge), as in the equilibrium-gap method.
    pieces : {"raise", "largest", "each"}
        What to do with a mask of several edge-connected pieces: raise (default), keep the
        largest (other pixels become vacuum) or solve each as its own free body.
    precision : {"auto", "double", "mixed"}
        Factorisation: ``"double"``; ``"mixed"`` (single-precision factor, each solve
        refined to a relative residual of 1e-12 by preconditioned conjugate gradients:
        half the factor's memory, several times slower solves); ``"auto"`` picks mixed
        only when a double factor is expected to exceed half the machine's memory
        (a 1024^2 grid needs ~5 GB).

    Attributes
    ----------
    K : scipy.sparse.csr_array, shape (n_dof, n_dof)
        Assembled stiffness (GPa): ``K @ u`` with u in nm is the nodal force per unit
        thickness (GPa nm = N/m), as is :meth:`force`.
    B : scipy.sparse.csr_array, shape (4 * n_elem, n_dof)
        Centroid operator: nodal displacements -> (e11, e22, e12, theta) at the pixel
        centres, component-major (rows ``k * n_elem + e``), image frame, tensor shear.
    node_mask : numpy.ndarray of bool, shape (ny + 1, nx + 1)
        Nodes that carry dofs; dof ``2 k`` (u_x) and ``2 k + 1`` (u_y) of the k-th active
        node in C order.
    boundary_node_mask : numpy.ndarray of bool, shape (ny + 1, nx + 1)
        Active nodes touching vacuum or the grid edge.
    interior_dofs : numpy.ndarray of int
        Dofs of the nodes that are not boundary nodes.
    mask : numpy.ndarray of bool, shape (ny, nx)
        The body (after ``pieces="largest"``, the kept piece).
    pixels : numpy.ndarray of int
        Flat (C-order) indices of the material pixels, in element order.
    n_dof, n_elem : int

    Notes
    -----
    Rotation gauge (free boundary): the body's rigid rotation is fixed so that the mean
    lattice rotation over each piece is zero, and its translation so that the mean
    displacement at the pixel centres is zero. A measured rotation map carries an unknown
    constant too; compare after removing its mean (or fit the constant).

    Examples
    --------
    >>> import numpy as np
    >>> from hyperspy_chemomech.mechanics import ParticleElasticity, isotropic_stiffness
    >>> from hyperspy_chemomech.mechanics import plane_stiffness
    >>> mask = np.zeros((20, 30), bool); mask[4:16, 5:25] = True
    >>> solver = ParticleElasticity(mask, pixel_size=2.0,
    ...                             stiffness=plane_stiffness(isotropic_stiffness(100, 0.3)))
    >>> eps0 = np.zeros((3, 20, 30)); eps0[0] = 0.01       # uniform expansion along x
    >>> sol = solver.solve(eps0, show_progressbar=False)
    >>> bool(np.allclose(sol.strain[0][mask], 0.01)), float(np.nanmax(np.abs(sol.stress))) < 1e-10
    (True, True)
    """

    def __init__(self, mask, pixel_size=1.0, stiffness=None, composition=None,
                 crystal_angle=0.0, boundary="free", pieces="raise", precision="auto"):
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask must be a 2D (ny, nx) array, got shape {mask.shape}")
        if mask.dtype != bool:
            if not np.isin(mask, (0, 1)).all():
                raise TypeError("mask must be boolean (True = material)")
            mask = mask.astype(bool)
        if not mask.any():
            raise ValueError("mask has no material pixels")
        if boundary not in ("free", "dirichlet"):
            raise ValueError(f"boundary must be 'free' or 'dirichlet', got {boundary!r}")
        if pieces not in ("raise", "largest", "each"):
            raise ValueError(f"pieces must be 'raise', 'largest' or 'each', got {pieces!r}")
        self.shape = mask.shape
        self.pixel_size = _as_pixel_size(pixel_size)
        self.boundary = boundary
        if precision not in ("auto", "double", "mixed"):
            raise ValueError(f"precision must be 'auto', 'double' or 'mixed', got {precision!r}")
        self._precision = precision
        mesh = _build_mesh(mask, pieces)
        self._mesh = mesh
        self.mask = np.zeros(mask.shape, dtype=bool)
        self.mask.ravel()[mesh.pixels] = True
        self.node_mask = mesh.node_mask
        self.pixels = mesh.pixels
        self.n_elem = mesh.pixels.size
        self.n_dof = 2 * int(np.count_nonzero(mesh.node_mask))
        self.n_pieces = mesh.n_pieces
        self.crystal_angle = self._check_angle(crystal_angle)
        self._D = self._element_stiffness(stiffness, composition)  # image frame, (3,3) or (n,3,3)
        dy, dx = self.pixel_size
        self._m, self._bc = element_matrices(dy, dx)
        self._area = dy * dx
        self._K = None
        self._B = None
        self._factor = None
        self._kfb = None
        self._bnodes = None

    # ------------------------------------------------------------------ set-up
    def _pixel_values(self, a):
        return np.asarray(a).reshape(a.shape[:-2] + (-1,))[..., self._mesh.pixels]

    def _check_angle(self, angle):
        a = np.asarray(angle, dtype=float)
        if a.ndim == 0:
            if not np.isfinite(a):
                raise ValueError("crystal_angle must be finite")
            return float(a)
        if a.shape != self.shape:
            raise ValueError(f"crystal_angle map has shape {a.shape}, the mask {self.shape}")
        a = self._pixel_values(a)
        if not np.all(np.isfinite(a)):
            raise ValueError("crystal_angle map must be finite inside the mask")
        return a

    def _element_stiffness(self, stiffness, composition):
        if stiffness is None:
            raise ValueError("stiffness is required: a 3x3 plane stiffness (GPa), a pair of "
                             "them, a callable of X or a material name")
        if isinstance(stiffness, str) or hasattr(stiffness, "lattice"):
            from ._stiffness import plane_stiffness
            from .materials import get_material

            stiffness = plane_stiffness(get_material(stiffness).stiffness)

        def composition_values():
            if composition is None:
                raise ValueError("composition-dependent stiffness needs `composition`")
            x = np.asarray(composition, dtype=float)
            if x.shape != self.shape:
                raise ValueError(f"composition has shape {x.shape}, the mask {self.shape}")
            x = self._pixel_values(x)
            if not np.all(np.isfinite(x)):
                raise ValueError(f"composition has {np.count_nonzero(~np.isfinite(x))} "
                                 "non-finite value(s) inside the mask")
            return x

        if callable(stiffness):
            x = composition_values()
            q = np.asarray(stiffness(x), dtype=float)
            if q.shape != x.shape + (3, 3):
                raise ValueError(f"stiffness callable returned shape {q.shape}, expected "
                                 f"{x.shape + (3, 3)}")
        else:
            if (isinstance(stiffness, (tuple, list)) and len(stiffness) == 2) or \
                    np.shape(stiffness) == (2, 3, 3):
                q0, q1 = (check_stiffness(s, 3, f"stiffness end member {k}")
                          for k, s in enumerate(stiffness))
                x = composition_values()[:, None, None]
                q = (1 - x) * q0 + x * q1
            else:
                q = np.asarray(stiffness, dtype=float)
                if q.shape == self.shape + (3, 3):
                    q = q.reshape(-1, 3, 3)[self._mesh.pixels]
                elif q.shape != (3, 3):
                    raise ValueError(f"stiffness must be (3, 3), a pair, {self.shape + (3, 3)} "
                                     f"or a callable, got shape {q.shape}")
        q = check_stiffness(q, 3, "plane stiffness")
        return rotate_plane_stiffness(q, self.crystal_angle)

    def _stiffness_local(self):
        """(n_elem, 8, 8) or (8, 8) element stiffness."""
        if self._D.ndim == 2:
            return np.einsum("ij,ijab->ab", self._D, self._m)
        return np.einsum("eij,ijab->eab", self._D, self._m, optimize=True)

    @property
    def K(self):
        """Assembled stiffness matrix (scipy.sparse CSR, symmetric, singular if free)."""
        if self._K is None:
            self._K = _assemble(self._mesh.edofs, self._stiffness_local(), (self.n_dof,) * 2)
        return self._K

    @property
    def B(self):
        """Centroid operator (4 n_elem, n_dof): displacement -> e11, e22, e12, theta."""
        if self._B is None:
            self._B = sp.csr_array(sp.vstack([self._b_rows(c) for c in range(4)]))
        return self._B

    def _b_rows(self, comp):
        """B's rows of one component (0..3 = e11, e22, e12, theta), CSR, cached."""
        if getattr(self, "_brows", None) is None:
            self._brows = {}
        if comp not in self._brows:
            bc = self._bc[comp] / (2 if comp == 2 else 1)  # tensor shear
            nz = np.nonzero(bc)[0]
            ne = self.n_elem
            # one row of the element's non-zero entries per element, built directly
            self._brows[comp] = sp.csr_array(
                (np.broadcast_to(bc[nz], (ne, nz.size)).ravel(),
                 self._mesh.edofs[:, nz].ravel(), np.arange(0, nz.size * ne + 1, nz.size)),
                shape=(ne, self.n_dof))
        return self._brows[comp]

    @property
    def boundary_node_mask(self):
        """Active nodes with fewer than four material pixels around them."""
        if self._bnodes is None:
            count = np.zeros((self.shape[0] + 1, self.shape[1] + 1), dtype=int)
            for di, dj in _CORNERS:
                count[di:di + self.shape[0], dj:dj + self.shape[1]] += self.mask
            self._bnodes = self.node_mask & (count < 4)
        return self._bnodes

    @property
    def interior_dofs(self):
        """Dofs (u_x, u_y) of the active nodes that are not boundary nodes."""
        ids = self._mesh.node_ids[self.node_mask & ~self.boundary_node_mask]
        return np.sort(np.concatenate([2 * ids, 2 * ids + 1]))

    @property
    def boundary_dofs(self):
        """Dofs (u_x, u_y) of the boundary nodes (prescribed under ``"dirichlet"``)."""
        ids = self._mesh.node_ids[self.boundary_node_mask]
        return np.sort(np.concatenate([2 * ids, 2 * ids + 1]))

    def _pinned_dofs(self):
        """Three dofs per piece that fix its rigid motion (any choice gives the same strain)."""
        nid, lab = self._mesh.node_ids, np.zeros(self._mesh.node_ids.shape, dtype=int)
        for di, dj in _CORNERS:
            view = lab[di:di + self.shape[0], dj:dj + self.shape[1]]
            view[self.mask] = self._piece_map()[self.mask] + 1
        pins = []
        for p in range(1, self.n_pieces + 1):
            ii, jj = np.nonzero(lab == p)
            a = 0
            dist = (ii - ii[a]) ** 2 + (jj - jj[a]) ** 2
            b = int(np.argmax(dist))
            na, nb = nid[ii[a], jj[a]], nid[ii[b], jj[b]]
            # pin the displacement of b perpendicular to a->b: that fixes the rotation
            comp = 1 if abs(jj[b] - jj[a]) >= abs(ii[b] - ii[a]) else 0
            pins += [2 * na, 2 * na + 1, 2 * nb + comp]
        return np.array(pins, dtype=np.int64)

    def _piece_map(self):
        m = np.zeros(self.shape, dtype=int)
        m.ravel()[self._mesh.pixels] = self._mesh.piece
        return m

    def _free_dofs(self):
        fixed = self._pinned_dofs() if self.boundary == "free" else self.boundary_dofs
        keep = np.ones(self.n_dof, dtype=bool)
        keep[fixed] = False
        return np.nonzero(keep)[0], fixed

    def factorize(self, like=None):
        """Factorise the stiffness restricted to the free dofs (done once, reused).

        Parameters
        ----------
        like : ParticleElasticity, optional
            A solver of the same body (mask, pixel size, boundary), already
            factorised, whose stiffness differs only in its values (e.g. C(X) of
            another composition map: one frame of an operando series). No new
            factorisation: every solve here is preconditioned conjugate gradients
            with ``like``'s factor, to a relative residual of 1e-12
            (:class:`~._factor.PreconditionedFactor`).
        """
        if like is not None and self._factor is None:
            if (like.shape != self.shape or like.boundary != self.boundary
                    or not np.array_equal(like.mask, self.mask)
                    or not np.allclose(like.pixel_size, self.pixel_size)):
                raise ValueError("factorize(like=...) needs a solver of the same body (mask, "
                                 "pixel size and boundary)")
            like.factorize()
        if self._factor is None:
            free, fixed = self._free_dofs()
            self._free, self._fixed = free, fixed
            ke = self._stiffness_local()
            if self.boundary == "dirichlet":
                # coupling of free to prescribed dofs, from the elements that have both
                col_fixed = np.full(self.n_dof, -1, dtype=np.int64)
                col_fixed[fixed] = np.arange(fixed.size)
                pos_free = np.full(self.n_dof, -1, dtype=np.int64)
                pos_free[free] = np.arange(free.size)
                sel = np.any(col_fixed[self._mesh.edofs] >= 0, axis=1)
                self._kfb = _assemble(self._mesh.edofs[sel], ke if ke.ndim == 2 else ke[sel],
                                      (free.size, fixed.size), pos_free, col_fixed)
            if free.size:
                # assemble straight into the nested-dissection order of the free dofs
                ii, jj = np.nonzero(self.node_mask)
                perm = nested_dissection(ii[free // 2], jj[free // 2])
                pos = np.full(self.n_dof, -1, dtype=np.int64)
                pos[free[perm]] = np.arange(free.size)
                kp = _assemble(self._mesh.edofs, ke, (free.size, free.size), pos, pos)
                del ke
                if like is not None and like._factor is not None:
                    self._factor = PreconditionedFactor(kp, like._factor)
                else:
                    self._factor = GridFactor(kp, precision=self._precision, perm=perm)
            else:
                self._factor = None
        return self

    # ------------------------------------------------------------------ solve
    def _check_field(self, field, name, ncomp, shape):
        f = np.asarray(field, dtype=float)
        single = f.ndim == 3
        if single:
            f = f[None]
        if f.ndim != 4 or f.shape[1:] != (ncomp,) + shape:
            raise ValueError(f"{name} must have shape ({ncomp}, {shape[0]}, {shape[1]}) or "
                             f"(n, {ncomp}, {shape[0]}, {shape[1]}), got {np.shape(field)}")
        return f, single

    def _eigenstrain_values(self, eigenstrain):
        e, single = self._check_field(eigenstrain, "eigenstrain", 3, self.shape)
        v = e.reshape(e.shape[:2] + (-1,))[..., self._mesh.pixels]  # (n, 3, n_elem) copy
        bad = ~np.isfinite(v)
        if bad.any():
            raise ValueError(f"eigenstrain holds {int(np.count_nonzero(bad.any(axis=1)))} "
                             "non-finite pixel value(s) inside the mask; NaN is only allowed "
                             "outside it")
        return v, single

    def _stress_of(self, v):
        """D @ (e11, e22, 2 e12) per element; v (n, 3, n_elem) tensor comps."""
        g = v.copy()
        g[:, 2] *= 2
        if self._D.ndim == 2:
            return np.einsum("ij,nje->nie", self._D, g)
        return np.einsum("eij,nje->nie", self._D, g)

    def _force_values(self, v):
        """Nodal force (n, n_dof) of per-element eigenstrain v (n, 3, n_elem).

        ``f = A_e sum_c B_c^T s_c`` with the eigenstress s = D eps0; the shear row of B
        holds the tensor shear, so it pairs with ``2 s12``.
        """
        st = self._stress_of(v) * self._area
        st[:, 2] *= 2
        f = self._b_rows(0).T @ st[:, 0].T
        for c in (1, 2):
            f += self._b_rows(c).T @ st[:, c].T
        return f.T

    def force(self, eigenstrain):
        """Equivalent nodal force ``f = sum_e A_e B_c^T D eps0`` of an eigenstrain.

        Parameters
        ----------
        eigenstrain : array_like, shape (3, ny, nx) or (n, 3, ny, nx)
            Image-frame (e11, e22, e12), tensor shear.

        Returns
        -------
        numpy.ndarray, shape (n_dof,) or (n, n_dof)
            GPa nm (force per unit thickness).
        """
        v, single = self._eigenstrain_values(eigenstrain)
        f = self._force_values(v)
        return f[0] if single else f

    def solve(self, eigenstrain, boundary_displacement=None, show_progressbar=None):
        """Equilibrium displacement and fields for one or many eigenstrain maps.

        Parameters
        ----------
        eigenstrain : array_like, shape (3, ny, nx) or (n, 3, ny, nx)
            Image-frame eigenstrain (e11, e22, e12), tensor shear, dimensionless; values
            outside the mask are ignored (may be NaN), NaN inside is an error.
        boundary_displacement : array_like, shape (2, ny + 1, nx + 1) or (n, 2, ny+1, nx+1)
            Dirichlet only: (u_x, u_y) (nm) at the nodes; only boundary nodes are read.
            ``None`` means zero.
        show_progressbar : bool, optional

        Returns
        -------
        ElasticSolution
        """
        v, single = self._eigenstrain_values(eigenstrain)
        n = v.shape[0]
        self.factorize()
        ufix = None
        if self.boundary == "dirichlet":
            ufix = np.zeros((1, self._fixed.size))
            if boundary_displacement is not None:
                ub, _ = self._check_field(boundary_displacement, "boundary_displacement",
                                          2, (self.shape[0] + 1, self.shape[1] + 1))
                if ub.shape[0] not in (1, n):
                    raise ValueError(f"boundary_displacement has {ub.shape[0]} fields, the "
                                     f"eigenstrain {n}")
                ufix = self.grid_to_dofs(ub)[:, self._fixed]
                if not np.all(np.isfinite(ufix)):
                    raise ValueError("boundary_displacement must be finite on boundary nodes")
        elif boundary_displacement is not None:
            raise ValueError("boundary_displacement needs boundary='dirichlet'")
        u = np.zeros((n, self.n_dof))
        # chunks bound the temporaries (forces, CG vectors) for large grids
        chunk = 16 if self.n_dof < 10 ** 6 else 8
        starts = range(0, n, chunk)
        if len(starts) > 1 and show_progressbar_default(show_progressbar):
            starts = progressbar(starts, show_progressbar=True, total=len(starts),
                                 desc="Solving")
        for s in starts:
            sl = slice(s, min(s + chunk, n))
            f = self._force_values(v[sl])
            if ufix is not None:
                uf = np.broadcast_to(ufix if ufix.shape[0] == 1 else ufix[sl], (f.shape[0],
                                                                                 ufix.shape[1]))
                u[sl, self._fixed] = uf
                f[:, self._free] -= (self._kfb @ uf.T).T
            if self._factor is not None:
                u[sl, self._free] = self._factor.solve(f[:, self._free].T).T
        if self.boundary == "free":
            u = self._remove_rigid(u)
        return ElasticSolution(self, u, v, single)

    def dofs_to_grid(self, dofs):
        """Nodal dof vector(s) (..., n_dof) -> (..., 2, ny + 1, nx + 1) (u_x, u_y), NaN off-body."""
        d = np.asarray(dofs, dtype=float)
        if d.shape[-1] != self.n_dof:
            raise ValueError(f"expected (..., {self.n_dof}) dofs, got shape {d.shape}")
        out = np.full(d.shape[:-1] + (2,) + self.node_mask.shape, np.nan)
        out[..., 0, self.node_mask] = d[..., 0::2]
        out[..., 1, self.node_mask] = d[..., 1::2]
        return out

    def grid_to_dofs(self, displacement):
        """(..., 2, ny + 1, nx + 1) nodal (u_x, u_y) -> dof vector(s) (..., n_dof)."""
        g = np.asarray(displacement, dtype=float)
        if g.shape[-3:] != (2,) + self.node_mask.shape:
            raise ValueError(f"expected (..., 2, {self.shape[0] + 1}, {self.shape[1] + 1}) "
                             f"nodal displacement, got shape {g.shape}")
        out = np.empty(g.shape[:-3] + (self.n_dof,))
        out[..., 0::2] = g[..., 0, self.node_mask]
        out[..., 1::2] = g[..., 1, self.node_mask]
        return out

    def integrate_gradient(self, strain, rotation=None):
        """Nodal displacement that best reproduces a measured strain and rotation map.

        Least squares over the pixels with data: minimises the squared Frobenius norm of
        the displacement-gradient misfit at the pixel centres,
        ``(e11)^2 + (e22)^2 + 2 (e12)^2 + 2 (theta)^2`` of the differences, i.e.
        ``|B u - g|_W^2``. This is the first step of the equilibrium-gap method (then
        ``K u - f(eps0)`` on :attr:`interior_dofs`).

        Centroid values do not see the checkerboard ("hourglass") pattern of each
        displacement component, nor (without the rotation) element rotations of
        alternating sign, nor nodes surrounded by pixels without data. Among the best
        fits the one of least elastic energy is returned (a relative 1e-8 weight of
        ``u^T K u`` is added), which is what every free-body equilibrium solution
        satisfies (``c^T K u = c^T f = 0`` for any mode c invisible to B): integrating the
        fields of a free :meth:`solve` gives back its displacement (to ~1e-7 relative).
        Gaps in the data are filled by that least-energy rule. Translations are fixed by
        zero mean pixel-centre displacement per piece; the rotation by the data, or
        without it, by zero mean rotation per piece.

        Parameters
        ----------
        strain : array_like, shape (3, ny, nx) or (n, 3, ny, nx)
            Image-frame (e11, e22, e12), tensor shear; NaN = no data (left out).
        rotation : array_like, shape (ny, nx) or (n, ny, nx), optional
            Lattice rotation theta (rad); NaN = no data. Without it the rigid rotation
            is undetermined and set to zero mean rotation per piece (as in :meth:`solve`).

        Returns
        -------
        numpy.ndarray, shape (n_dof,) or (n, n_dof)
            Nodal displacement (nm); :meth:`dofs_to_grid` maps it onto the node grid.
        """
        e, single = self._check_field(strain, "strain", 3, self.shape)
        use_rot = rotation is not None
        if use_rot:
            r = np.asarray(rotation, dtype=float)
            r = r[None] if r.ndim == 2 else r
            if r.shape != (e.shape[0],) + self.shape:
                raise ValueError(f"rotation must have shape {self.shape} (or (n,) + that) "
                                 f"matching the strain, got {np.shape(rotation)}")
        else:
            r = np.zeros((e.shape[0],) + self.shape)
        g = np.concatenate([e, r[:, None]], axis=1)
        g = g.reshape(g.shape[:2] + (-1,))[..., self._mesh.pixels]   # (n, 4, ne)
        if np.any(np.isinf(g)):
            raise ValueError("strain/rotation hold infinite values")
        have = np.all(np.isfinite(g), axis=1)                          # (n, ne)
        w = np.array([1.0, 1.0, 2.0, 2.0 if use_rot else 0.0])
        out = np.empty((g.shape[0], self.n_dof))
        factors = {}
        for k in range(g.shape[0]):
            key = have[k].tobytes()
            if key not in factors:
                factors[key] = self._gradient_factor(have[k], w, use_rot)
            wk, free, fac = factors[key]
            rhs = self.B.T @ (wk * np.nan_to_num(g[k]).ravel())
            out[k] = 0.0
            out[k, free] = fac.solve(rhs[free])
        out = self._remove_rigid(out, rotation=not use_rot)
        return out[0] if single else out

    def measured_edge_displacement(self, fields, use_rotation=True):
        """Node displacement (nm) integrated from measured maps, for a Dirichlet edge.

        A strain map that cuts a particle (or a clamped particle) is modelled with
        its edge held where it was measured: this integrates the measured
        distortion (:meth:`integrate_gradient`, pixels outside the mask and NaN
        left out) and returns it on the node grid, ready for
        ``solve(..., boundary_displacement=...)`` (only boundary nodes are read).

        Parameters
        ----------
        fields : array_like, shape (4, ny, nx) or (n, 4, ny, nx)
            e11, e22, e12 (tensor shear) and theta (rad), image frame.
        use_rotation : bool
            Use theta (when it has any finite value); otherwise the rigid rotation
            is fixed by zero mean rotation.

        Returns
        -------
        numpy.ndarray, shape (2, ny + 1, nx + 1) or (n, 2, ny + 1, nx + 1)
        """
        f = np.asarray(fields, dtype=float)
        single = f.ndim == 3
        f = f[None] if single else f
        if f.shape[1:] != (4,) + self.shape:
            raise ValueError(f"fields must have shape (4,) + {self.shape}, got {np.shape(fields)}")
        f = np.where(self.mask, f, np.nan)
        theta = f[:, 3] if use_rotation and np.isfinite(f[:, 3]).any() else None
        u = self.dofs_to_grid(np.atleast_2d(self.integrate_gradient(f[:, :3], theta)))
        return u[0] if single else u

    def _gradient_factor(self, have, w, use_rot=True):
        wk = (w[:, None] * have[None, :]).ravel()
        normal = (self.B.T @ sp.diags_array(wk) @ self.B).tocsr()
        # Centroid data do not see the checkerboard of each displacement component (nor,
        # without the rotation, element rotations of alternating sign), nor displacements
        # in pixels without data. A tiny elastic-energy term picks, among the exact fits,
        # the displacement of least energy: the K-orthogonality that every free-body
        # equilibrium solution has (c^T K u = c^T f = 0 for any c with B c = 0).
        eps = _GRADIENT_TIKHONOV * normal.diagonal().mean() / self.K.diagonal().mean()
        normal = (normal + eps * self.K).tocsr()
        # rigid motions are seen by neither term: pin them (the gauge is applied after)
        pins = self._pinned_dofs().reshape(-1, 3)
        pins = (pins[:, :2] if use_rot else pins).ravel()
        keep = np.ones(self.n_dof, dtype=bool)
        keep[pins] = False
        free = np.nonzero(keep)[0]
        node = free // 2
        ii, jj = np.nonzero(self.node_mask)
        return wk, free, factorize(normal[free][:, free], ii[node], jj[node], precision="double")

    def _gauge_operators(self):
        """Sparse per-piece means of theta and of the pixel-centre displacement, cached."""
        if getattr(self, "_gauge", None) is None:
            ne, pc = self.n_elem, self._mesh.piece
            npc = np.bincount(pc, minlength=self.n_pieces)
            mean = sp.csr_array((1.0 / npc[pc], (pc, np.arange(ne))),
                                shape=(self.n_pieces, ne))
            g_theta = mean @ self._b_rows(3)
            rows = np.repeat(np.arange(ne), 4)
            avg = [sp.csr_array((np.full(4 * ne, 0.25), (rows, self._mesh.edofs[:, c::2].ravel())),
                                shape=(ne, self.n_dof)) for c in (0, 1)]
            node_piece = np.empty(self.n_dof // 2, dtype=int)
            node_piece[self._mesh.edofs[:, 0::2].ravel() // 2] = np.repeat(pc, 4)
            iy, ix = np.unravel_index(self._mesh.pixels, self.shape)
            dy, dx = self.pixel_size
            xc = np.bincount(pc, (ix + 0.5) * dx) / npc
            yc = np.bincount(pc, (iy + 0.5) * dy) / npc
            ny_, nx_ = np.nonzero(self.node_mask)
            self._gauge = (g_theta, mean @ avg[0], mean @ avg[1], node_piece,
                           nx_ * dx - xc[node_piece], ny_ * dy - yc[node_piece])
        return self._gauge

    def _remove_rigid(self, u, rotation=True):
        """Gauge: zero mean rotation and zero mean pixel-centre displacement per piece."""
        g_theta, t_x, t_y, node_piece, x_rel, y_rel = self._gauge_operators()

        def per_node(op, v):
            m = (op @ v.T).T                                   # (n, n_pieces)
            return m if self.n_pieces == 1 else m[:, node_piece]

        u = u.copy()
        if rotation:
            # subtract the rigid rotation w about the piece's centroid: u = w (-y, x)
            w = per_node(g_theta, u)
            u[:, 0::2] += w * y_rel
            u[:, 1::2] -= w * x_rel
        u[:, 0::2] -= per_node(t_x, u)
        u[:, 1::2] -= per_node(t_y, u)
        return u


def _assemble(edofs, ke, shape, row_map=None, col_map=None):
    """Sparse matrix from element matrices, vectorised COO (duplicates summed by CSR).

    ``row_map``/``col_map`` renumber the global dofs (-1 drops the entry), so that a
    reduced or permuted block is assembled without indexing the full matrix.
    """
    ne = edofs.shape[0]
    small = max(shape) < 2 ** 31
    rows = edofs if row_map is None else row_map[edofs]
    cols = edofs if col_map is None else col_map[edofs]
    if small:
        rows, cols = rows.astype(np.int32), cols.astype(np.int32)
    r = np.broadcast_to(rows[:, :, None], (ne, 8, 8))
    c = np.broadcast_to(cols[:, None, :], (ne, 8, 8))
    v = np.broadcast_to(ke, (ne, 8, 8))
    if row_map is not None or col_map is not None:
        keep = (r >= 0) & (c >= 0)
        r, c, v = r[keep], c[keep], v[keep]
    k = sp.coo_array((v.ravel(), (r.ravel(), c.ravel())), shape=shape).tocsr()
    k.sum_duplicates()
    return k


class ElasticSolution:
    """Fields of :meth:`ParticleElasticity.solve` (image frame, NaN outside the mask).

    Attributes are computed on first access. A single ``(3, ny, nx)`` input drops the
    leading (right-hand side) axis of every field.

    Attributes
    ----------
    displacement : numpy.ndarray, shape (n, 2, ny + 1, nx + 1)
        (u_x, u_y) at the nodes (nm).
    strain : numpy.ndarray, shape (n, 3, ny, nx)
        Total strain (e11, e22, e12) at pixel centres, tensor shear.
    rotation : numpy.ndarray, shape (n, ny, nx)
        Lattice rotation theta = (du_y/dx - du_x/dy) / 2 (rad); zero mean per piece for a
        free body.
    eigenstrain : numpy.ndarray, shape (n, 3, ny, nx)
        The input, NaN outside the mask.
    elastic_strain : numpy.ndarray, shape (n, 3, ny, nx)
        strain - eigenstrain.
    stress : numpy.ndarray, shape (n, 3, ny, nx)
        (s11, s22, s12) (GPa).
    dofs : numpy.ndarray, shape (n, n_dof)
        The nodal displacement vector(s) (nm).
    """

    def __init__(self, solver, u, eigen_values, single):
        self._solver, self._v, self._single = solver, eigen_values, single
        self.dofs = u[0] if single else u
        self._u = u

    def _fields(self, comps, transform=None):
        """(n, len(comps), ny, nx) maps of B rows ``comps`` (0..3 = e11, e22, e12, theta).

        ``comps=()``: three maps made by ``transform`` alone.

        Filled one right-hand side at a time, straight into the output (no full-size
        temporaries); ``transform(values, k)`` may modify the (len(comps), n_elem) values.
        """
        s = self._solver
        ops = [s._b_rows(c) for c in comps] if comps else []
        n = self._u.shape[0]
        m = len(comps) if comps else 3
        out = np.full((n, m, s.shape[0] * s.shape[1]), np.nan)
        if transform is None:  # one sparse product per component for all right-hand sides
            for j, op in enumerate(ops):
                out[:, j, s.pixels] = (op @ self._u.T).T
            return out.reshape((n, m) + s.shape)
        for k in range(n):
            vals = np.stack([op @ self._u[k] for op in ops]) if ops else None
            if transform is not None:
                vals = transform(vals, k)
            out[k][:, s.pixels] = vals
        return out.reshape((n, m) + s.shape)

    def _out(self, a):
        return a[0] if self._single else a

    @property
    def strain(self):
        return self._out(self._fields((0, 1, 2)))

    @property
    def rotation(self):
        return self._out(self._fields((3,))[:, 0])

    @property
    def strain_and_rotation(self):
        """(4, ny, nx) or (n, 4, ny, nx): e11, e22, e12, theta (the StrainField order)."""
        return self._out(self._fields((0, 1, 2, 3)))

    @property
    def eigenstrain(self):
        return self._out(self._fields((), lambda v, k: self._v[k]))

    @property
    def elastic_strain(self):
        return self._out(self._fields((0, 1, 2), lambda v, k: v - self._v[k]))

    @property
    def stress(self):
        st = self._solver._stress_of
        return self._out(self._fields((0, 1, 2), lambda v, k: st((v - self._v[k])[None])[0]))

    @property
    def displacement(self):
        return self._out(self._solver.dofs_to_grid(self._u))
