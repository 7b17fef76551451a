"""Occupancy-task settings (tasks.occupancy), importable without torch."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..configs import CellSettings, Strict, TaskSection, register_task, validate

CROPS = ("official", "inclusive", "none")
LR_DECAYS = ("per_epoch", "per_step")
COORDINATE_ORDERS = ("ij", "xy")
STANFORD_ITEMS = ["thai", "armadillo", "dragon", "bunny", "lucy"]
EMBEDDED_ITEMS = ["bumpy"]


class OccupancyTaskConfig(Strict):
    resolution: int = Field(512, ge=2)  # grid the volume was made at (checked against the volume file)
    group_size: int = Field(256, ge=1)  # voxels per IGA group (consecutive in C order)
    groups_per_step: int = Field(512, ge=1)  # groups per optimiser step (BN: 100000 groups of 2 = 200k points)
    epochs: int = Field(200, ge=1)
    lr_decay: Literal["per_epoch", "per_step"] = "per_epoch"
    shuffle_groups: bool = True  # a fresh random group order every epoch (official --random_index)
    leftover_step: bool = True  # one vanilla step on the voxels that fill no whole group
    crop: Literal["official", "inclusive", "none"] = "official"  # official: upper bound exclusive
    coordinate_order: Literal["ij", "xy"] = "ij"  # ij: (axis0, axis1, axis2); xy: as np.meshgrid
    iou_threshold: float = Field(0.5, gt=0, lt=1)
    eval_every_epochs: int = Field(1, ge=1)
    checkpoint_every_epochs: int = Field(10, ge=1)
    eval_chunk: int = Field(262144, ge=1)  # points per forward pass when evaluating the whole grid
    mesh_resolution: int = Field(256, ge=1)  # longest side of the grid the saved mesh is extracted from


class OccupancyCellSettings(CellSettings):
    task: OccupancyTaskConfig = OccupancyTaskConfig()

    @model_validator(mode="after")
    def _end_fits_a_step(self):
        given = sorted({"iterations", "checkpoint_every"} & self.train.model_fields_set)
        if given:
            raise ValueError(
                f"train.{given[0]} is derived for occupancy cells (task.epochs × steps per epoch, "
                f"task.checkpoint_every_epochs); remove train.{given[0]} and set those instead"
            )
        # a step's kernel has one sampled point per group (fewer only in an epoch's last step)
        self.adjuster.check_groups(self.task.groups_per_step, "task.groups_per_step")
        # the grid bounds the groups before the data is read (the cropped shape, fewer, is checked by the job)
        voxels, size = self.task.resolution**3, self.task.group_size
        if size > voxels:
            raise ValueError(
                f"task.group_size={size} exceeds the {self.task.resolution}^3 grid's {voxels} voxels: no whole group"
            )
        self.adjuster.check_groups(
            voxels // size, f"at most, in a {self.task.resolution}^3 grid of task.group_size={size}"
        )
        return self


def task_config(raw: dict) -> OccupancyTaskConfig:
    return validate(OccupancyTaskConfig, raw, "task.")


class Voxelize(Strict):
    method: Literal["winding", "parity"] = "winding"


class OccupancyFigures(Strict):
    item: str | None = None
    view_axis: Literal["auto", "x", "y", "z", 0, 1, 2] = "auto"


class OccupancySection(TaskSection):
    dataset: Literal["stanford", "occupancy_mat", "embedded"] = "stanford"
    voxelize: Voxelize = Voxelize()
    meshes: dict[str, str] = {}  # stanford: the scan inside each extracted archive
    mat_items: dict[str, str] = {}  # occupancy_mat: registry item of each shape's .mat volume
    mat_resolution: int = Field(512, ge=2)
    figures: OccupancyFigures = OccupancyFigures()

    def known_items(self) -> list[str]:
        return STANFORD_ITEMS + EMBEDDED_ITEMS

    @model_validator(mode="after")
    def _items_and_sources(self):
        known = EMBEDDED_ITEMS if self.dataset == "embedded" else STANFORD_ITEMS
        bad = [i for i in self.all_items() if i not in known]
        if bad:
            raise ValueError(f"items {bad} are not {self.dataset} shapes; allowed: {known}")
        table = {"stanford": ("meshes", self.meshes), "occupancy_mat": ("mat_items", self.mat_items)}
        if self.dataset in table:
            key, mapping = table[self.dataset]
            missing = [i for i in self.all_items() if i not in mapping]
            if missing:
                raise ValueError(
                    f"dataset {self.dataset!r}: {key} has no entry for items {missing} (it covers {sorted(mapping)})"
                )
        if self.figures.item is not None and self.items and self.figures.item not in self.items:
            raise ValueError(f"figures.item={self.figures.item!r} is not among the items {self.items}")
        return self


register_task("occupancy", OccupancySection, OccupancyCellSettings)
