"""iga: Inductive Gradient Adjustment for implicit neural representations (reproduction library)."""
__version__ = "0.1.0"
