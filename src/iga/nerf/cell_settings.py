"""A NeRF cell's resolved settings (config.yaml → iga.cells) → :class:`NeRFRunSettings`.

Settings shape: ``{"run": {NeRFRunSettings fields}, "adjuster": {"end": …}, "model": {"technique": …},
"set": {"pipeline.model.fr.alpha": 0.01, …}}``; the method comes from the cell (vanilla / FR / IGA).
"""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional

from pydantic import Field, model_validator

from ..configs import DEVICE_RE, ConfigError, Strict, TaskSection, register_task, validate
from . import DEFAULT_END

BLENDER_SCENES = ["chair", "drums", "ficus", "hotdog", "lego", "materials", "mic", "ship"]


class NeRFRun(Strict):
    """What a cell may set under ``run`` (paths, cell id and the method come from the workflow)."""

    iterations: int = Field(200_000, ge=1)
    lr_schedule: Literal["official", "nerf-pytorch"] = "nerf-pytorch"
    device: str = Field("auto", pattern=DEVICE_RE)
    downscale: int = Field(2, ge=1)
    testskip: int = Field(8, ge=1)
    num_rays: int = Field(1024, ge=2)
    coarse_samples: int = Field(64, ge=1)
    fine_samples: int = Field(128, ge=1)
    net_width: int = Field(256, ge=1)
    net_depth: int = Field(8, ge=1)
    seed: int = 4096
    checkpoint_every: int = Field(5000, ge=1)
    eval_chunk: int = Field(4096, ge=1)


class NeRFAdjuster(Strict):
    kind: Literal["vanilla", "iga"] = "vanilla"
    end: int = Field(DEFAULT_END, ge=1)  # one group per ray: end < run.num_rays


class NeRFModel(Strict):
    architecture: Literal["NeRF"] = "NeRF"
    technique: Literal["none", "fr", "bn"] = "none"


class NeRFCellSettings(Strict):
    run: NeRFRun = NeRFRun()
    adjuster: NeRFAdjuster = NeRFAdjuster()
    model: NeRFModel = NeRFModel()
    set: Dict[str, Any] = {}  # dotted nerfstudio overrides, e.g. {"pipeline.model.fr.alpha": 0.01}

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
            raise ValueError("NeRF+BN is not implemented (no public code; the paper quotes Cai et al.'s "
                             "numbers): remove 'BN' from tasks.nerf.methods")
        if self.adjuster.kind == "iga" and not self.adjuster.end < self.run.num_rays:
            raise ValueError(f"adjuster.end={self.adjuster.end} must be smaller than run.num_rays="
                             f"{self.run.num_rays} (one group per ray)")
        return self

    @property
    def method(self) -> str:
        if self.adjuster.kind == "iga":
            return "iga-nerf"
        return "nerf-fr" if self.model.technique == "fr" else "nerf"


def validate_cell(settings: dict) -> NeRFCellSettings:
    return validate(NeRFCellSettings, settings)


def method_of(settings: dict) -> str:
    return validate_cell(settings).method


class NeRFSceneSize(Strict):
    size: int = Field(32, ge=8)
    n_train: int = Field(16, ge=1)
    n_test: int = Field(2, ge=1)


class NeRFSection(TaskSection):
    dataset: Literal["blender", "embedded"] = "blender"
    figure_item: Optional[str] = None
    embedded_scene: NeRFSceneSize = NeRFSceneSize()

    def known_items(self) -> List[str]:
        return BLENDER_SCENES + ["procedural"]

    @model_validator(mode="after")
    def _items(self):
        known = BLENDER_SCENES if self.dataset == "blender" else ["procedural"]
        bad = [i for i in self.items if i not in known]
        if bad:
            raise ValueError(f"items {bad} are not {self.dataset} scenes; allowed: {known}")
        if self.figure_item is not None and self.items and self.figure_item not in self.items:
            raise ValueError(f"figure_item={self.figure_item!r} is not among the items {self.items}")
        return self


register_task("nerf", NeRFSection, NeRFCellSettings)


def to_run_settings(settings: dict, data: str, out: str, cell: str, lpips_status: Optional[str]):
    from .run import NeRFRunSettings
    s = validate_cell(settings)
    return NeRFRunSettings(method=s.method, data=data, out=out, cell=cell, end=s.adjuster.end,
                           lpips_status_file=lpips_status, extra=dict(s.set), **s.run.model_dump())
