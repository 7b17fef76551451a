"""The embedded Blender-format scene (numpy + Pillow only; no nerfstudio needed)."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from iga.nerf.procedural_scene import SceneSpec, camera_poses, generate_scene, pixel_rays

TINY = SceneSpec(size=16, n_train=4, n_val=1, n_test=2, samples_per_ray=96, supersample=1)


def test_scene_layout_and_determinism(tmp_path):
    a = generate_scene(tmp_path / "a", TINY)
    b = generate_scene(tmp_path / "b", TINY)
    assert a["files"] == b["files"], "generation must be deterministic"
    for split, n in (("train", 4), ("val", 1), ("test", 2)):
        meta = json.loads((tmp_path / "a" / f"transforms_{split}.json").read_text())
        assert meta["camera_angle_x"] == pytest.approx(TINY.camera_angle_x)
        assert len(meta["frames"]) == n
        for fr in meta["frames"]:
            img = np.asarray(Image.open(tmp_path / "a" / (fr["file_path"][2:] + ".png")))
            assert img.shape == (16, 16, 4) and img.dtype == np.uint8
            c2w = np.asarray(fr["transform_matrix"])
            assert c2w.shape == (4, 4)
            assert np.allclose(c2w[:3, :3] @ c2w[:3, :3].T, np.eye(3), atol=1e-9)
            assert np.linalg.norm(c2w[:3, 3]) == pytest.approx(TINY.radius)
    img = np.asarray(Image.open(tmp_path / "a" / "train" / "r_0.png"))
    alpha = img[..., 3]
    assert alpha.min() == 0 and alpha.max() == 255, "both empty background and opaque object in view"


def test_cameras_look_at_origin():
    for split in ("train", "val", "test"):
        for c2w in camera_poses(5, 4.0, split):
            forward = -c2w[:3, 2]
            assert np.allclose(forward, -c2w[:3, 3] / np.linalg.norm(c2w[:3, 3]), atol=1e-12)
    # the centre ray of an even-sized image passes through the origin
    o, d = pixel_rays(camera_poses(1, 4.0, "train")[0], 2, math.radians(40))
    centre = d.mean(axis=0)
    centre /= np.linalg.norm(centre)
    closest = o[0] + centre * np.dot(-o[0], centre)
    assert np.linalg.norm(closest) < 1e-9


def test_cli_nerf_scene(tmp_path):
    from iga.cli import main

    assert (
        main(
            [
                "nerf-scene",
                "--out",
                str(tmp_path / "s"),
                "--size",
                "8",
                "--n-train",
                "2",
                "--n-val",
                "1",
                "--n-test",
                "1",
                "--samples-per-ray",
                "32",
                "--supersample",
                "1",
            ]
        )
        == 0
    )
    assert (tmp_path / "s" / "transforms_test.json").exists()
    assert np.asarray(Image.open(tmp_path / "s" / "train" / "r_1.png")).shape == (8, 8, 4)
