"""Blender data as nerf-pytorch loads it, and nerf-pytorch's ray batches, for nerfstudio.

* :class:`IGABlenderDataParserConfig` — nerfstudio 1.1.5's Blender parser has no resolution
  option (its ``scale_factor`` scales camera origins only). This one adds ``downscale`` (2 =
  nerf-pytorch's ``half_res``: 800×800 → 400×400, focal halved) and ``testskip`` (every N-th
  val/test frame, nerf-pytorch's default 8); a scene without ``transforms_test.json`` is evaluated
  on held-out train views instead (every ``holdout_every``-th, :mod:`iga.nerf.splits`).
  Downscaling is nerf-pytorch's: a k×k box average (``cv2.INTER_AREA`` at an integer factor)
  of the *straight* RGBA image, composited on white afterwards. The downscaled RGBA images are
  cached as PNGs (so uint8-rounded; nerf-pytorch keeps them as floats) next to the data, or
  under ``~/.cache/iga/nerf`` when the data is read-only.
* :class:`SingleImagePixelSamplerConfig` — nerf-pytorch with ``no_batching = True`` (the Blender
  configs, also the official IGA runs): each step's rays are drawn without replacement from one
  random training image. nerfstudio's default draws pixels across all images with replacement.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs
from nerfstudio.data.dataparsers.blender_dataparser import Blender, BlenderDataParserConfig
from nerfstudio.data.pixel_samplers import PixelSampler, PixelSamplerConfig
from nerfstudio.data.scene_box import SceneBox

from ..configs import ConfigError
from .cell_settings import run_default
from .splits import plan_split


def box_downscale_rgba(img_u8: np.ndarray, k: int) -> np.ndarray:
    """k×k box average of a straight (non-premultiplied) RGB(A) uint8 image, rounded to uint8."""
    h, w = img_u8.shape[:2]
    if h % k or w % k:
        raise ConfigError(f"downscale={k} needs image sides divisible by {k}; the images are {w}×{h}")
    x = img_u8.astype(np.float64).reshape(h // k, k, w // k, k, img_u8.shape[2]).mean(axis=(1, 3))
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _cache_root(data: Path, k: int, cache_dir: Path | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir) / f"downscale_{k}"
    local = data / "iga_cache" / f"downscale_{k}"
    try:
        local.mkdir(parents=True, exist_ok=True)
        probe = local / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return local
    except OSError:
        digest = hashlib.sha256(str(data.resolve()).encode()).hexdigest()[:16]
        return Path.home() / ".cache" / "iga" / "nerf" / digest / f"downscale_{k}"


def downscaled_file(src: Path, data: Path, k: int, cache_dir: Path | None = None) -> Path:
    """Path of the k-downscaled copy of ``src`` (written atomically if missing)."""
    from PIL import Image

    dst = _cache_root(data, k, cache_dir) / src.relative_to(data)
    if dst.exists() and dst.stat().st_mtime >= src.stat().st_mtime:
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(Image.open(src))
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    small = box_downscale_rgba(arr, k)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp.png")
    Image.fromarray(small).save(tmp)
    os.replace(tmp, dst)  # concurrent runs on the same scene never see a partial file
    return dst


@dataclass
class IGABlenderDataParserConfig(BlenderDataParserConfig):
    """Blender parser with nerf-pytorch's ``half_res`` (downscale=2) and ``testskip``."""

    _target: type = field(default_factory=lambda: IGABlender)
    downscale: int = run_default("downscale")
    """Integer image downscale factor (2 = nerf-pytorch half_res, 400×400 for the Blender scenes)."""
    testskip: int = run_default("testskip")
    """Keep every N-th val/test frame (nerf-pytorch's default 8: 25 of the 200 Blender test views)."""
    holdout_every: int = run_default("holdout_every")
    """No transforms_test.json: every N-th train view (r_0, r_N, …) is evaluated, the others train."""
    cache_dir: Path | None = None
    """Where downscaled images go (default: DATA/iga_cache, or ~/.cache/iga/nerf if DATA is read-only)."""


class IGABlender(Blender):
    config: IGABlenderDataParserConfig

    def _generate_dataparser_outputs(self, split: str = "train") -> DataparserOutputs:
        import imageio

        k, skip = int(self.config.downscale), int(self.config.testskip)
        if k < 1 or skip < 1:
            raise ConfigError(f"downscale={k} and testskip={skip} must be >= 1")
        try:
            plan = plan_split(self.data, int(self.config.holdout_every), skip)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        meta, frames = plan.frames(self.data, split)
        if not frames:
            raise ConfigError(f"{self.data}: no {split} views under {plan.kind} (holdout_every={plan.holdout_every})")
        filenames, poses = [], []
        for frame in frames:
            src = self.data / Path(frame["file_path"].replace("./", "") + ".png")
            filenames.append(src if k == 1 else downscaled_file(src, self.data, k, self.config.cache_dir))
            poses.append(np.array(frame["transform_matrix"]))
        poses = np.array(poses).astype(np.float32)
        height, width = imageio.v2.imread(filenames[0]).shape[:2]
        focal = 0.5 * width / np.tan(0.5 * float(meta["camera_angle_x"]))
        c2w = torch.from_numpy(poses[:, :3])
        c2w[..., 3] *= self.scale_factor
        cameras = Cameras(
            camera_to_worlds=c2w,
            fx=focal,
            fy=focal,
            cx=width / 2.0,
            cy=height / 2.0,
            camera_type=CameraType.PERSPECTIVE,
        )
        scene_box = SceneBox(aabb=torch.tensor([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]], dtype=torch.float32))
        return DataparserOutputs(
            image_filenames=filenames,
            cameras=cameras,
            alpha_color=self.alpha_color_tensor,
            scene_box=scene_box,
            dataparser_scale=self.scale_factor,
            metadata={
                "downscale": k,
                "testskip": skip,
                "eval_split": plan.kind,
                "holdout_every": plan.holdout_every,
                "split_note": plan.note,
                # each view's image relative to the scene (the figure reads the full-resolution one)
                "sources": [frame["file_path"].replace("./", "") + ".png" for frame in frames],
            },
        )


@dataclass
class SingleImagePixelSamplerConfig(PixelSamplerConfig):
    """All rays of a step from one random image, pixels without replacement (nerf-pytorch no_batching)."""

    _target: type = field(default_factory=lambda: SingleImagePixelSampler)


class SingleImagePixelSampler(PixelSampler):
    config: SingleImagePixelSamplerConfig

    def sample_method(
        self,
        batch_size: int,
        num_images: int,
        image_height: int,
        image_width: int,
        mask: torch.Tensor | None = None,
        device: torch.device | str = "cpu",
    ) -> torch.Tensor:
        if isinstance(mask, torch.Tensor) and not self.config.ignore_mask:
            return super().sample_method(batch_size, num_images, image_height, image_width, mask, device)
        n_pix = image_height * image_width
        image = torch.randint(num_images, (1,), device=device).expand(batch_size)
        if batch_size <= n_pix:
            pix = torch.randperm(n_pix, device=device)[:batch_size]
        else:  # more rays than pixels: with replacement
            pix = torch.randint(n_pix, (batch_size,), device=device)
        return torch.stack([image, pix // image_width, pix % image_width], dim=-1).long()


def _dataparser_spec():
    from nerfstudio.plugins.registry_dataparser import DataParserSpecification

    return DataParserSpecification(
        config=IGABlenderDataParserConfig(),
        description="Blender scenes as nerf-pytorch loads them (half_res, testskip)",
    )


# For the entry point group ``nerfstudio.dataparser_configs`` (``iga-blender-data``): lets ``ns-train``
# expose ``--downscale``/``--testskip`` as the ``iga-blender-data`` subcommand.
iga_blender_data = _dataparser_spec()
