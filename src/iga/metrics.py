"""Metrics shared by all tasks: PSNR, SSIM, LPIPS (only with real weights), IoU, spectral error.

A metric that cannot be computed is a :class:`Missing` value with a reason — never NaN and
never a number from random weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_SHA256_PREFIX = "7be5be79"


@dataclass(frozen=True)
class Missing:
    reason: str

    def to_json(self) -> dict:
        return {"missing": True, "reason": self.reason}


MetricValue = float | Missing


def psnr_from_mse(mse: float, peak: float = 1.0) -> float:
    return float(10.0 * math.log10(peak**2 / max(mse, 1e-30)))


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Clip to [0, 1] and quantise, as the paper's evaluation does."""
    return (np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)


def psnr(pred: np.ndarray, target: np.ndarray) -> float:
    return psnr_from_mse(float(np.mean((pred.astype(np.float64) - target.astype(np.float64)) ** 2)))


def ssim(pred_u8: np.ndarray, target_u8: np.ndarray) -> float:
    """SSIM of two uint8 H×W×C images (scikit-image, channel axis last)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(pred_u8, target_u8, channel_axis=-1, data_range=255))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


LPIPS_OFFLINE = "AlexNet weights not available offline (see README › LPIPS)"


def alexnet_weights_status(status_file: Path | None = None, weights: Path | None = None) -> dict:
    """Where the real AlexNet weights are, or why not: {"available": bool, "path"|"reason": str}."""
    if status_file is not None and Path(status_file).exists():
        st = json.loads(Path(status_file).read_text())
        if not st.get("available"):
            # the full fetch error goes to the cell's log; the metric and the tables carry one short sentence
            print(f"LPIPS: {st.get('reason', 'no reason recorded')}", file=sys.stderr)
            return {"available": False, "reason": LPIPS_OFFLINE}
        weights = Path(st["path"])
    if weights is None:
        torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
        weights = torch_home / "hub" / "checkpoints" / ALEXNET_FILE
    weights = Path(weights)
    if not weights.exists():
        print(f"LPIPS: AlexNet weights not found at {weights}", file=sys.stderr)
        return {"available": False, "reason": LPIPS_OFFLINE}
    digest = _sha256(weights)
    if not digest.startswith(ALEXNET_SHA256_PREFIX):
        return {
            "available": False,
            "reason": f"{weights} has SHA-256 {digest[:16]}…, expected prefix {ALEXNET_SHA256_PREFIX}",
        }
    return {"available": True, "path": str(weights)}


class LPIPS:
    """LPIPS-alex with the real torchvision AlexNet weights, or a Missing value explaining why not."""

    def __init__(
        self, status_file: Path | None = None, weights: Path | None = None, disabled_reason: str | None = None
    ):
        self.status = (
            {"available": False, "reason": disabled_reason}
            if disabled_reason
            else alexnet_weights_status(status_file, weights)
        )
        self._net = None

    @property
    def available(self) -> bool:
        return bool(self.status.get("available"))

    def _load(self):
        import lpips
        import torch
        import torchvision

        # Build with random backbone weights, then load the verified file: nothing is downloaded.
        net = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
        alex = torchvision.models.alexnet()
        alex.load_state_dict(torch.load(self.status["path"], map_location="cpu", weights_only=True))
        feats = alex.features
        for slice_ in (net.net.slice1, net.net.slice2, net.net.slice3, net.net.slice4, net.net.slice5):
            for name, mod in slice_.named_children():
                mod.load_state_dict(feats[int(name)].state_dict())
        return net.eval()

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> MetricValue:
        """Images H×W×3 in [0, 1] (inputs not normalised, as the paper's evaluation)."""
        if not self.available:
            return Missing(self.status["reason"])
        import torch

        if self._net is None:
            self._net = self._load()
        to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).permute(2, 0, 1)[None]
        with torch.no_grad():
            return float(self._net(to_t(pred), to_t(target)).item())


def iou(pred: np.ndarray, target: np.ndarray, threshold: float = 0.5) -> float:
    """Intersection over union of ``pred > threshold`` and ``target > threshold``."""
    p, t = pred > threshold, target > threshold
    union = np.logical_or(p, t).sum()
    return float(np.logical_and(p, t).sum() / union) if union else 1.0


def relative_spectral_error(pred: np.ndarray, target: np.ndarray, freqs) -> np.ndarray:
    """Δ_k = |F[g](k) − F[f](k)| / |F[g](k)| at DFT indices ``freqs`` (paper eq. 7)."""
    fg, ff = np.fft.fft(np.asarray(target, dtype=np.float64)), np.fft.fft(np.asarray(pred, dtype=np.float64))
    k = np.asarray(freqs, dtype=int)
    return np.abs(fg[k] - ff[k]) / np.abs(fg[k])


def metric_to_json(value: MetricValue):
    return value.to_json() if isinstance(value, Missing) else value
