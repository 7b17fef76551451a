"""2D colour image fitting (paper section 6.1): pixels → groups of square patches, full batch.

The reported PSNR is the best training PSNR over iterations (of the pre-update state, as the
official code logs it); SSIM and LPIPS come from the clipped uint8 rendering of the best state.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import torch

from ..adjust import build_adjuster
from ..cells import typed
from ..configs import ConfigError
from ..grouping import patch_groups
from ..metrics import LPIPS, metric_to_json, psnr, psnr_from_mse, ssim, to_uint8
from ..models import build_model
from ..provenance import record, settings_fingerprint, write_json
from ..train import Batch, Trainer, seed_everything
from .image_config import ImageTaskConfig, task_config  # noqa: F401  (re-exported)


def load_image(path: Path, downsample: int = 1) -> np.ndarray:
    """H×W×3 float64 in [0, 1]; optional anti-aliased integer downsampling (keeps orientation)."""
    from skimage import io, transform
    img = io.imread(path)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    img = img[..., :3].astype(np.float64) / 255.0
    if downsample > 1:
        h, w = img.shape[0] // downsample, img.shape[1] // downsample
        img = transform.resize(img, (h, w), anti_aliasing=True, order=1)
    return img


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

    def step_metrics(self, step: int, batch_mse: float) -> Dict[str, float]:
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


def run_cell(settings: dict, image_path: Path, out_dir: Path, cell_id: str,
             lpips_status: Optional[Path] = None, device: str | None = None, resume: bool = True,
             lpips_disabled_reason: Optional[str] = None) -> dict:
    """Train one image cell and write metrics.json, recon.png, train_log.jsonl, provenance.json."""
    from skimage import io
    model_cfg, adj_cfg, optim_cfg, train_cfg, task_raw = typed(settings)
    task_cfg = task_config(task_raw)
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
    trainer = Trainer(model, task, adjuster, optim_cfg, train_cfg, out_dir, generator=generator,
                      fingerprint=settings_fingerprint(settings))
    t0 = time.perf_counter()
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
    log_times = [rec for rec in _read_times(out_dir / "train_log.jsonl")]
    prov = record(settings, cell_id, result.device, result.wall_time_s,
                  time_per_iteration_s=_median_step_time(log_times),
                  process_time_s=round(time.perf_counter() - t0, 3))
    write_json(prov, out_dir / "provenance.json")
    write_json(metrics, out_dir / "metrics.json")  # last: its presence marks a finished cell
    return metrics


def _read_times(log: Path):
    import json
    if not log.exists():
        return []
    return [json.loads(ln)["time_s"] for ln in log.read_text().splitlines() if ln.strip()]


def _median_step_time(times, skip: int = 5) -> Optional[float]:
    """Median seconds per iteration, ignoring the first ``skip`` (warm-up) iterations."""
    if len(times) < skip + 2:
        return None
    d = np.diff(np.asarray(times[skip:]))
    return float(np.median(d)) if len(d) else None
