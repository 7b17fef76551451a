"""Image-task settings (tasks.image and tasks.image_ablation), importable without torch."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, PositiveInt, ValidationInfo, field_validator, model_validator

from ..configs import ARCHITECTURES, CellSettings, Strict, TaskSection, register_task
from ..data.registry import REGISTRY

KODAK_SIZE = (768, 512)  # width, height (portrait images are 512x768: the same groups)
# the Kodak images with a checksummed source (the paper's eight); another needs its SHA-256 there first
KODAK_ITEMS = sorted(REGISTRY["kodak"])
EMBEDDED_ITEMS = ["astronaut", "coffee", "chelsea", "rocket"]  # scikit-image's CC0 pictures


class ImageTaskConfig(Strict):
    patch_size: int = Field(32, ge=1)  # IGA groups: non-overlapping patch_size² patches
    downsample: int = Field(1, ge=1)  # integer factor, anti-aliased (mini preset: 4)


class ImageCellSettings(CellSettings):
    task: ImageTaskConfig = ImageTaskConfig()

    @model_validator(mode="after")
    def _fits_the_image(self, info: ValidationInfo):
        size = (info.context or {}).get("image_size")
        if size is None:
            return self
        w, h = size
        t = self.task
        if w % t.downsample or h % t.downsample:
            raise ValueError(f"task.downsample={t.downsample} must divide the image size {w}x{h}")
        w, h = w // t.downsample, h // t.downsample
        if w % t.patch_size or h % t.patch_size:
            raise ValueError(f"task.patch_size={t.patch_size} must divide the (downsampled) image {w}x{h}")
        self.adjuster.check_groups(
            (w // t.patch_size) * (h // t.patch_size), f"{w}x{h} image in {t.patch_size}x{t.patch_size} patches"
        )
        return self


class ImageFigures(Strict):
    crops_item: str | None = None
    crops_arch: str = "PE"
    visual_items: list[str] | None = None


class ImageSection(TaskSection):
    dataset: Literal["kodak", "embedded"] = "kodak"
    embedded_size: list[PositiveInt] = Field([72, 48], min_length=2, max_length=2)  # width, height
    figures: ImageFigures = ImageFigures()

    def image_size(self):
        return KODAK_SIZE if self.dataset == "kodak" else tuple(self.embedded_size)

    def cell_context(self, item: str) -> dict:
        return {"image_size": self.image_size()}

    def known_items(self) -> list[str]:
        return KODAK_ITEMS + EMBEDDED_ITEMS

    def figure_choice(self) -> ImageFigures:
        """The figures' choices, defaults filled in: crops of the first item with PE (Fig. 4), the first two
        items' reconstructions (Fig. 10)."""
        f = self.figures or ImageFigures()
        return ImageFigures(
            crops_item=f.crops_item or self.items[0],
            crops_arch=f.crops_arch,
            visual_items=f.visual_items or self.items[:2],
        )

    @model_validator(mode="after")
    def _items_and_figures(self):
        bad = [a for a in self.all_architectures() if a not in ARCHITECTURES]
        if bad:
            raise ValueError(f"architectures {bad} are not image architectures; allowed: {list(ARCHITECTURES)}")
        known = KODAK_ITEMS if self.dataset == "kodak" else EMBEDDED_ITEMS
        bad = [i for i in self.all_items() if i not in known]
        if bad:
            where = " with a checksummed source (iga.data.registry)" if self.dataset == "kodak" else ""
            raise ValueError(f"items {bad} are not {self.dataset} images{where}; allowed: {known}")
        f = self.figures
        if f is None:
            return self
        for key, items in (
            ("crops_item", [f.crops_item] if f.crops_item else []),
            ("visual_items", f.visual_items or []),
        ):
            missing = [i for i in items if i not in self.items]
            if missing and self.items:
                raise ValueError(f"figures.{key} names {missing}, which are not among the items {self.items}")
        if self.items and f.crops_arch not in self.architectures:
            raise ValueError(f"figures.crops_arch={f.crops_arch!r} is not among the architectures {self.architectures}")
        return self


class AblationSection(ImageSection):
    TABLE_GRIDS: ClassVar[tuple[str, ...]] = ("table4", "table5", "variants")  # Tables 4, 5 and the variants
    REQUIRED_GRIDS: ClassVar[tuple[str, ...]] = TABLE_GRIDS
    embedded_size: list[PositiveInt] = Field([64, 32], min_length=2, max_length=2)
    figures: ImageFigures | None = None  # the ablation draws no figure

    @field_validator("figures")
    @classmethod
    def _no_figures(cls, v):
        if v is not None:
            raise ValueError("the ablation draws no figure (its tables are Tables 4, 5 and the variants); remove it")
        return v

    # a cell identical to a tasks.image cell (same image and resolved settings) is read from it
    reuse_image_cells: bool = True


register_task("image", ImageSection, ImageCellSettings)
register_task("image_ablation", AblationSection, ImageCellSettings)
