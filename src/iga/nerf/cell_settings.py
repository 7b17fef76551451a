"""A NeRF cell's resolved settings (config.yaml → iga.cells) → :class:`NeRFRunSettings`.

Settings shape: ``{"run": {NeRFRunSettings fields}, "adjuster": {"end": …}, "model": {"technique": …},
"set": {"pipeline.model.fr.alpha": 0.01, …}}``; the method comes from the cell (vanilla / FR / IGA).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from ..configs import Solver, Strict, TaskSection, register_task, validate
from . import DEFAULT_END

BLENDER_SCENES = ["chair", "drums", "ficus", "hotdog", "lego", "materials", "mic", "ship"]


class NeRFRun(Strict):
    """What a cell may set under ``run`` (paths, cell id and the method come from the workflow)."""

    iterations: int = Field(200_000, ge=1, description="total training steps (paper: 200000)")
    lr_schedule: Literal["official", "nerf-pytorch"] = Field(
        "nerf-pytorch", description="nerf-pytorch: 5e-4*0.1^(step/500k); official: constant 5e-5 (official IGA code)"
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="nerfstudio machine type; auto: CUDA when present"
    )
    downscale: int = Field(2, ge=1, description="image downscale (2 = nerf-pytorch half_res)")
    testskip: int = Field(8, ge=1, description="every N-th test view (nerf-pytorch: 8)")
    holdout_every: int = Field(
        8, ge=2, description="scene without a test split: every N-th train view (r_0, r_N, …) is held out to evaluate"
    )
    num_rays: int = Field(1024, ge=2, description="rays per step = IGA groups (paper: 1024)")
    coarse_samples: int = Field(64, ge=1, description="stratified samples per ray")
    fine_samples: int = Field(128, ge=1, description="importance samples per ray")
    net_width: int = Field(256, ge=1, description="units per layer")
    net_depth: int = Field(8, ge=1, description="layers")
    # run.seeds (several seeds, one cell each) is expanded by iga.cells and never reaches a run
    seed: int = Field(4096, ge=0, description="random seed")
    checkpoint_every: int = Field(5000, ge=1, description="steps between checkpoints")
    eval_chunk: int = Field(4096, ge=1, description="rays per chunk when rendering test views")


def run_default(knob: str):
    """A run knob's default, declared once above; the nerfstudio config classes and the workflow's run
    settings take theirs from here."""
    return NeRFRun.model_fields[knob].default


class NeRFAdjuster(Strict):
    kind: Literal["vanilla", "iga"] = "vanilla"
    end: int = Field(
        DEFAULT_END, ge=1, description="IGA: the top `end` eigenvalues are balanced (paper: 25; ficus 30); < num_rays"
    )
    solver: Solver = Field("auto", description="how S's eigenpairs are computed (iga.ntk)")


class NeRFModel(Strict):
    architecture: Literal["NeRF"] = "NeRF"
    technique: Literal["none", "fr", "bn"] = "none"


class NeRFCellSettings(Strict):
    run: NeRFRun = NeRFRun()
    adjuster: NeRFAdjuster = NeRFAdjuster()
    model: NeRFModel = NeRFModel()
    set: dict[str, Any] = {}  # dotted nerfstudio overrides, e.g. {"pipeline.model.fr.alpha": 0.01}

    @model_validator(mode="before")
    @classmethod
    def _drop_empty_generic_sections(cls, data):
        # iga.cells.resolve_settings adds empty optim/train/task sections to every cell; NeRF has none
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if not (k in ("optim", "train", "task") and v == {})}
        return data

    @model_validator(mode="after")
    def _rules(self):
        if self.model.technique == "bn":
            raise ValueError(
                "NeRF+BN is not implemented (no public code; the paper quotes Cai et al.'s "
                "numbers): remove 'BN' from tasks.nerf.methods"
            )
        if self.adjuster.kind == "iga" and not self.adjuster.end < self.run.num_rays:
            raise ValueError(
                f"adjuster.end={self.adjuster.end} must be smaller than run.num_rays="
                f"{self.run.num_rays} (one group per ray)"
            )
        return self

    @property
    def method(self) -> str:
        if self.adjuster.kind == "iga":
            return "iga-nerf"
        return "nerf-fr" if self.model.technique == "fr" else "nerf"


def validate_cell(settings: dict) -> NeRFCellSettings:
    return validate(NeRFCellSettings, settings)


class NeRFSceneSize(Strict):
    size: int = Field(32, ge=8)
    n_train: int = Field(16, ge=1)
    n_test: int = Field(2, ge=1)


class NeRFSection(TaskSection):
    dataset: Literal["blender", "embedded"] = "blender"
    figure_item: str | None = None
    embedded_scene: NeRFSceneSize = NeRFSceneSize()
    # True: the scenes' train split only (from the mirror's scene folder, e.g. the offline lego copy, or
    # out of the zip: the same files), evaluated on held-out train views (run.holdout_every), whichever copy
    # a machine has. False (default): the zip's scenes, evaluated on their real test split.
    train_only_scenes: bool = False

    def known_items(self) -> list[str]:
        return BLENDER_SCENES + ["procedural"]

    @model_validator(mode="after")
    def _items(self):
        known = BLENDER_SCENES if self.dataset == "blender" else ["procedural"]
        bad = [i for i in self.all_items() if i not in known]
        if bad:
            raise ValueError(f"items {bad} are not {self.dataset} scenes; allowed: {known}")
        if self.figure_item is not None and self.items and self.figure_item not in self.items:
            raise ValueError(f"figure_item={self.figure_item!r} is not among the items {self.items}")
        return self


register_task("nerf", NeRFSection, NeRFCellSettings)
