"""Reuse factorised mechanics solvers between learning and decomposition.

Learning a law factorises the particle's stiffness once; the decomposition of the
same maps with the same settings must not factorise again. Solvers are kept in a
small LRU cache keyed by a digest of everything that defines them.
"""

import hashlib
from collections import OrderedDict

import numpy as np

from ._fem import ParticleElasticity

_CACHE = OrderedDict()
MAX_SOLVERS = 4


def _digest(*parts):
    h = hashlib.sha1()
    for p in parts:
        if callable(p) and not isinstance(p, np.ndarray):
            h.update(repr(id(p)).encode())
        elif isinstance(p, (tuple, list)):
            h.update(b"(")
            h.update(_digest(*p).encode())
            h.update(b")")
        elif p is None:
            h.update(b"None")
        else:
            a = np.ascontiguousarray(p)
            h.update(str(a.dtype).encode() + str(a.shape).encode())
            h.update(a.tobytes())
    return h.hexdigest()


def get_solver(mask, pixel_size, stiffness, composition=None, crystal_angle=0.0,
               boundary="free"):
    """A :class:`~hyperspy_chemomech.mechanics.ParticleElasticity`, cached.

    The composition only enters the key when the stiffness depends on it (a pair
    or a callable), so a homogeneous solver is shared by any composition map on
    the same mask.
    """
    mask = np.asarray(mask, dtype=bool)
    comp_dependent = isinstance(stiffness, (tuple, list)) or callable(stiffness)
    key = _digest(mask, np.broadcast_to(np.asarray(pixel_size, float), (2,)), stiffness,
                  composition if comp_dependent else None, np.asarray(crystal_angle, float),
                  np.frombuffer(boundary.encode(), dtype=np.uint8))
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    solver = ParticleElasticity(mask, pixel_size=pixel_size, stiffness=stiffness,
                                composition=np.where(mask, composition, 0.0)
                                if composition is not None else None,
                                crystal_angle=crystal_angle, boundary=boundary)
    _CACHE[key] = solver
    while len(_CACHE) > MAX_SOLVERS:
        _CACHE.popitem(last=False)
    return solver


def clear_solver_cache():
    """Forget all cached solvers (frees their factorisations)."""
    _CACHE.clear()
