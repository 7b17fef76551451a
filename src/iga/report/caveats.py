"""Caveats of cells whose recipe is uncertain, derived from their resolved settings (the one place).

A table shows a caveat as a numbered mark on the row's label and the note under the table
(:func:`iga.report.tables.layout`); ``iga collect`` stores each cell's caveat in the long form.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..configs import ModelConfig

CAVEAT_SEP = " | "  # between distinct caveats in one long-form field (a caveat itself may hold "; ")
IMAGE_TASKS = ("image", "image_ablation")
# the official code sets SIREN+FR's alpha per image; the values we know it used, and for which image
OFFICIAL_SIREN_FR_ALPHA = {0.004: "kodim08"}
NERF_BN = "NeRF+BN: the paper quotes Cai et al.'s numbers (its Table 3 †); not run here (no public code)"


def cell_caveat(task: str, arch: str, method: str, settings: dict) -> str | None:
    """The caveat of one cell (task, architecture, method and its resolved settings), or None."""
    model = settings.get("model", {}) or {}
    technique = model.get("technique")
    if arch == "SIREN" and technique == "bn":
        layout = ModelConfig.model_validate(model).bn_placement  # the layout the model resolves to
        return (
            f"SIREN+BN: official `sin+bn` layout (bn_placement {layout}); the paper's SIREN+BN setting is not published"
        )
    if arch == "SIREN" and technique == "fr" and task in IMAGE_TASKS:
        alpha = (model.get("fr", {}) or {}).get("alpha")
        if alpha is None:
            return None
        source = OFFICIAL_SIREN_FR_ALPHA.get(float(alpha))
        which = f" (the official {source} value)" if source else ""
        return f"SIREN+FR: α is tuned per image in the official code; α = {alpha:g}{which} used for all images"
    return None


def table_caveats(task: str, methods: Iterable[str]) -> list[str]:
    """Caveats of a whole table: a paper row that has no cell of ours (NeRF+BN: quoted, not run)."""
    if task == "nerf" and "BN" not in set(methods):
        return [NERF_BN]
    return []
