"""iga: Inductive Gradient Adjustment for implicit neural representations (reproduction library)."""

__version__ = "0.1.0"
# Bump when a code change alters results: every training cell reruns (a rule param) and no checkpoint
# of the old version is resumed (it is part of the checkpoint fingerprint). Cosmetic edits: leave it.
__results_version__ = "1"
