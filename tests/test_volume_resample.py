"""Occupancy volumes downsampled by block mean (the mini preset's 128³ from the published 512³)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from snakemake_runner import run_snakemake

from iga.cli import main
from iga.data.volume_resample import downsample_factor, downsample_occupancy
from iga.data.voxelize import load_volume, save_volume

ROOT = Path(__file__).resolve().parents[1]


def test_block_majority_matches_a_direct_loop():
    rng = np.random.default_rng(0)
    occ = rng.random((8, 12, 4)) < 0.45
    small = downsample_occupancy(occ, 6)  # factor 2
    assert small.shape == (4, 6, 2)
    for i, j, k in np.ndindex(small.shape):
        block = occ[2 * i : 2 * i + 2, 2 * j : 2 * j + 2, 2 * k : 2 * k + 2]
        assert small[i, j, k] == (block.mean() >= 0.5)


def test_threshold_decides_thin_parts_across_block_borders():
    occ = np.zeros((8, 8, 8), dtype=bool)
    occ[3:5, :, :] = True  # a 2-voxel slab across the border of two 4-blocks
    assert not downsample_occupancy(occ, 2).any()  # a quarter of each block: below the majority
    assert downsample_occupancy(occ, 2, threshold=0.25).all()
    occ[0:4, :, :] = True  # block 0 full, block 1 a quarter
    small = downsample_occupancy(occ, 2)
    assert small[0].all() and not small[1].any()


def test_bad_resolution_names_the_value():
    with pytest.raises(ValueError, match="resolution=100"):
        downsample_factor((512, 512, 512), 100)
    with pytest.raises(ValueError, match="does not divide the sides"):
        downsample_factor((512, 510, 512), 128)
    assert downsample_factor((512, 256, 512), 128) == 4


def test_cli_keeps_metadata_and_records_the_source(tmp_path, capsys):
    occ = np.zeros((16, 16, 16), dtype=bool)
    occ[4:12, 4:12, 4:12] = True
    save_volume(tmp_path / "v.npz", occ, source="fixture", method="precomputed", resolution=16)
    assert (
        main(
            [
                "downsample-volume",
                "--volume",
                str(tmp_path / "v.npz"),
                "--resolution",
                "4",
                "--out",
                str(tmp_path / "v4.npz"),
            ]
        )
        == 0
    )
    small, meta = load_volume(tmp_path / "v4.npz")
    assert small.shape == (4, 4, 4) and small[1:3, 1:3, 1:3].all() and small.sum() == 8
    assert meta["resolution"] == 4 and meta["source"] == "fixture" and "16, 16, 16" in meta["downsampled_from"]
    with pytest.raises(SystemExit, match="resolution=5"):
        main(
            [
                "downsample-volume",
                "--volume",
                str(tmp_path / "v.npz"),
                "--resolution",
                "5",
                "--out",
                str(tmp_path / "bad.npz"),
            ]
        )


def test_mini_preset_plans_the_downsampling_of_the_published_volumes(tmp_path):
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    res = run_snakemake(tmp_path, "-n", "--configfile", str(ROOT / "presets" / "mini.yaml"), timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "data/occupancy/mat_volumes/thai_down128.npz" in out
    assert "data/occupancy/mat_volumes/dragon_down128.npz" in out
    assert "--volume data/occupancy/mat_volumes/thai.npz" not in out  # cells train on 128³, not 512³
