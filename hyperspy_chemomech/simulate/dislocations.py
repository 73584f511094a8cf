"""Edge-dislocation fields for synthetic particles (the analytic field lives in
:mod:`hyperspy_chemomech.fields`, where learning also takes it from)."""

from ..fields import dislocation_strain, edge_dislocation_gradient

__all__ = ["dislocation_strain", "edge_dislocation_gradient"]
