"""2D colour image fitting (paper section 6.1): pixels → groups of square patches, full batch.

The reported PSNR is the best training PSNR over iterations (of the pre-update state, as the
official code logs it); SSIM and LPIPS come from the clipped uint8 rendering of the best state.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import torch

from ..adjust import build_adjuster
from ..configs import ConfigError, validate
from ..grouping import patch_groups
from ..metrics import LPIPS, metric_to_json, psnr, psnr_from_mse, ssim, to_uint8
from ..models import build_model
from ..provenance import settings_fingerprint, write_json
from ..result_record import take_job_start, write_record
from ..train import Batch, Trainer, seed_everything
from .image_config import ImageCellSettings


def load_image(path: Path, downsample: int = 1) -> np.ndarray:
    """H×W×3 float64 in [0, 1]; optional anti-aliased integer downsampling (keeps orientation).

    8-bit samples are divided by 255, 16-bit ones by 65535. Gray (1/2/4/8/16-bit) is replicated to
    three channels; a palette expands to its colours. Alpha (RGBA, gray+alpha, palette transparency)
    is dropped: the colour channels are fitted as stored, as the official code does (``img[..., :3]``),
    never composited. Anything else (not an image, unreadable, float or multi-frame) raises a
    one-line ConfigError naming the file, before any training.
    """
    path = Path(path)
    img = _read_rgb(path)
    if downsample > 1:
        from skimage import transform

        h, w = img.shape[0] // downsample, img.shape[1] // downsample
        if h < 1 or w < 1:
            raise ConfigError(
                f"{path}: {img.shape[1]}x{img.shape[0]} pixels is smaller than task.downsample={downsample}"
            )
        img = transform.resize(img, (h, w), anti_aliasing=True, order=1)
    return img


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    from ..data.png16 import png_header, read_png16

    try:
        hdr = png_header(path)
        if hdr is not None and hdr.bit_depth == 16 and hdr.colour_type in (2, 4, 6) and hdr.interlace == 0:
            raw = read_png16(path)  # Pillow would keep only the high byte of these
            return _to_rgb(raw[..., :1] if raw.shape[-1] == 2 else raw[..., :3], 65535.0)
        with Image.open(path) as im:
            if getattr(im, "n_frames", 1) > 1:
                raise ConfigError(f"{path}: has {im.n_frames} frames; expected a single picture")
            im.load()
            return _pil_to_rgb(im, path)
    except (OSError, UnidentifiedImageError, ValueError, EOFError, zlib.error) as exc:
        if isinstance(exc, ConfigError):
            raise
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"{path}: not a readable image ({reason}); expected a PNG/JPEG picture "
            "(8/16-bit gray, gray+alpha, RGB, RGBA or palette)"
        ) from None


def _pil_to_rgb(im, path: Path) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return _to_rgb(np.asarray(im).astype(np.uint16)[..., None], 65535.0)
    if mode == "I" and im.format == "PNG":  # older Pillow opens 16-bit gray PNGs as 32-bit "I"
        return _to_rgb(np.asarray(im)[..., None], 65535.0)
    if mode in ("1", "L", "LA", "La"):
        return _to_rgb(np.asarray(im.convert("L"))[..., None], 255.0)
    if mode in ("RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
        return _to_rgb(np.asarray(im.convert("RGB")), 255.0)  # RGB: the stored values as they are
    raise ConfigError(
        f"{path}: image mode {mode!r} is not supported; expected 8/16-bit gray, gray+alpha, RGB, RGBA or palette"
    )


def _to_rgb(samples: np.ndarray, full_scale: float) -> np.ndarray:
    """H×W×1 or H×W×3 integer samples → H×W×3 float64 in [0, 1]."""
    img = samples.astype(np.float64) / full_scale
    return np.repeat(img, 3, axis=-1) if img.shape[-1] == 1 else img


def coordinate_grid(h: int, w: int) -> torch.Tensor:
    """[H, W, 2] coordinates linspace(-1, 1) per axis, row-major (as the official get_mgrid)."""
    ys, xs = torch.linspace(-1, 1, h), torch.linspace(-1, 1, w)
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1)


class ImageFittingTask:
    score_name = "psnr"

    def __init__(self, image: np.ndarray, patch_size: int, name: str = "image"):
        self.name = name
        self.image = image
        h, w = image.shape[:2]
        self.shape = (h, w)
        self.groups = patch_groups(h, w, patch_size)  # [G, P] indices of the flattened image
        coords = coordinate_grid(h, w).reshape(-1, 2)
        pixels = torch.from_numpy(image.reshape(-1, 3)).float()
        self._batch = Batch(coords[self.groups], pixels[self.groups])

    def batch(self, step: int, generator: torch.Generator) -> Batch:
        return self._batch  # full-batch training: every step sees every pixel

    def step_metrics(self, step: int, batch_mse: float) -> dict[str, float]:
        return {"psnr": psnr_from_mse(batch_mse)}

    def evaluate(self, model, step):
        return None

    def render(self, model: torch.nn.Module, device: torch.device) -> np.ndarray:
        h, w = self.shape
        model.eval()
        with torch.no_grad():
            out = model(coordinate_grid(h, w).reshape(-1, 2).to(device)).reshape(h, w, 3)
        model.train()
        return out.cpu().double().numpy()


def run_cell(
    settings: dict,
    image_path: Path,
    out_dir: Path,
    cell_id: str,
    lpips_status: Path | None = None,
    device: str | None = None,
    resume: bool = True,
    lpips_disabled_reason: str | None = None,
) -> dict:
    """Train one image cell and write metrics.json, recon.png, train_log.jsonl, provenance.json."""
    job_start = take_job_start()
    from skimage import io

    cell = validate(ImageCellSettings, settings)
    model_cfg, adj_cfg, optim_cfg, train_cfg, task_cfg = cell.model, cell.adjuster, cell.optim, cell.train, cell.task
    if device:
        train_cfg.device = device
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_everything(train_cfg.seed)
    image = load_image(Path(image_path), task_cfg.downsample)
    task = ImageFittingTask(image, task_cfg.patch_size, name=cell_id)
    model = build_model(model_cfg)
    generator = torch.Generator().manual_seed(train_cfg.seed)
    adjuster = build_adjuster(adj_cfg, generator)
    trainer = Trainer(
        model,
        task,
        adjuster,
        optim_cfg,
        train_cfg,
        out_dir,
        generator=generator,
        fingerprint=settings_fingerprint(settings),
    )
    result = trainer.fit(resume=resume)

    final_psnr = trainer.last_metrics.get("psnr")
    model.load_state_dict(result.best_state)
    recon = task.render(model, trainer.device)
    recon_u8, target_u8 = to_uint8(recon), to_uint8(image)
    io.imsave(out_dir / "recon.png", recon_u8, check_contrast=False)
    lp = LPIPS(lpips_status, disabled_reason=lpips_disabled_reason)
    metrics = {
        "psnr": result.best_score,
        "psnr_final": final_psnr,
        "psnr_uint8": psnr(recon_u8 / 255.0, target_u8 / 255.0),
        "ssim": ssim(recon_u8, target_u8),
        "lpips": metric_to_json(lp(recon_u8 / 255.0, target_u8 / 255.0)),
        "best_step": result.best_step,
        "iterations": result.steps,
        "image_size": list(image.shape[:2]),
        "groups": int(task.groups.shape[0]),
        **adjuster.stats(),  # eigensolver steps and fallbacks (iga.ntk.TopkEigensolver)
    }
    write_record(out_dir, cell_id, settings, train_cfg.seed, result.device, job_start, result.training())
    write_json(metrics, out_dir / "metrics.json")  # last: its presence marks a finished cell
    return metrics
