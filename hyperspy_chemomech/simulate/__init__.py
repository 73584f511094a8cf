"""Synthetic particles and observations with known truth (tests, docs, demo)."""

from .shapes import platelet_mask
from .composition_fields import composition_field

__all__ = ["platelet_mask", "composition_field"]
