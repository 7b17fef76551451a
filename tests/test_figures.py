"""Image figures accept reconstructions of a downsampled image (mini preset: 4x)."""
import numpy as np
from skimage import io

from iga.report.image_figures import figure_crops, figure_visual


def test_figures_with_a_downsampled_reconstruction(tmp_path):
    rng = np.random.default_rng(0)
    gt = (rng.random((64, 96, 3)) * 255).astype(np.uint8)
    io.imsave(tmp_path / "gt.png", gt, check_contrast=False)
    recons = {}
    for m in ("vanilla", "IGA"):
        p = tmp_path / f"{m}.png"
        io.imsave(p, (rng.random((16, 24, 3)) * 255).astype(np.uint8), check_contrast=False)
        recons[m] = p
    figure_crops(tmp_path / "gt.png", recons, "PE", tmp_path / "crops.png", "t")
    figure_visual({"x": tmp_path / "gt.png"}, {("x", "PE", m): p for m, p in recons.items()}, ["PE"],
                  tmp_path / "visual.png", "t")
    assert (tmp_path / "crops.png").stat().st_size > 1000 and (tmp_path / "visual.png").stat().st_size > 1000
