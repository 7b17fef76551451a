"""The embedded image set: public-domain / CC0 photos that ship inside scikit-image.

Cropped to the Kodak aspect ratio (3:2 landscape) and resized, so the smoke preset runs the
same image pipeline offline. Nothing is downloaded.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

# name -> skimage.data loader; all bundled with the scikit-image wheel (public domain / CC0)
EMBEDDED_IMAGES = ("astronaut", "coffee", "chelsea", "rocket")


def _crop_to_aspect(img: np.ndarray, aspect_w: int = 3, aspect_h: int = 2) -> np.ndarray:
    h, w = img.shape[:2]
    target_w = min(w, h * aspect_w // aspect_h)
    target_h = target_w * aspect_h // aspect_w
    top, left = (h - target_h) // 2, (w - target_w) // 2
    return img[top:top + target_h, left:left + target_w]


def make_embedded_image(name: str, out: Path, width: int, height: int) -> Path:
    """Write ``name`` as a ``height``×``width`` RGB PNG (crop to width:height, anti-aliased resize)."""
    import skimage.data
    from skimage import io, transform
    if name not in EMBEDDED_IMAGES:
        raise ValueError(f"embedded image {name!r} is not available; choose one of {list(EMBEDDED_IMAGES)}")
    img = getattr(skimage.data, name)()[..., :3]
    img = _crop_to_aspect(img, width, height)
    img = transform.resize(img, (height, width), anti_aliasing=True)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.png")
    io.imsave(tmp, (np.clip(img, 0, 1) * 255).round().astype(np.uint8), check_contrast=False)
    tmp.replace(out)
    return out
