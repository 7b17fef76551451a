"""Occupancy task: IoU, cropping convention, coordinates, epoch batching, lr schedule, settings
validation and one tiny cell end to end through the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from iga.cli import main
from iga.configs import ConfigError, OptimConfig, TrainConfig
from iga.data.voxelize import save_volume
from iga.grouping import chunk_groups
from iga.metrics import iou
from iga.tasks.occupancy import (
    GridCoordinates,
    OccupancyTask,
    OccupancyTaskConfig,
    _derived_schedule,
    crop,
    crop_box,
    run_cell,
)
from iga.tasks.occupancy_config import task_config
from iga.train import lr_factor


def test_iou_identical_disjoint_partial():
    a = np.zeros((4, 4, 4), np.uint8)
    a[:2] = 1
    b = np.zeros_like(a)
    b[2:] = 1
    assert iou(a, a) == 1.0
    assert iou(a, b) == 0.0
    c = np.zeros_like(a)
    c[1:3] = 1
    assert iou(a, c) == pytest.approx(1 / 3)


def test_crop_official_drops_last_occupied_slice():
    vol = np.zeros((10, 12, 9), bool)
    vol[3:8, 2:6, 4:7] = True  # occupied indices 3..7, 2..5, 4..6
    assert crop_box(vol, "official") == ((3, 7), (2, 5), (4, 6))  # hi = last index, exclusive
    assert crop_box(vol, "inclusive") == ((3, 8), (2, 6), (4, 7))
    assert crop_box(vol, "none") == ((0, 10), (0, 12), (0, 9))
    c, box = crop(vol, "official")
    assert c.shape == (4, 3, 2) and c.all()
    # the official numpy expression, literally
    h, w, t = np.where(vol > 0.99)
    assert (c == vol[h.min() : h.max(), w.min() : w.max(), t.min() : t.max()]).all()
    with pytest.raises(ConfigError, match="crop='tight'"):
        crop_box(vol, "tight")


def test_coordinates_linspace_per_axis_and_official_meshgrid_order():
    H, W, T = 4, 5, 3
    gc = GridCoordinates((H, W, T), "ij")
    dense = gc.dense().numpy()
    ref = np.stack(
        np.meshgrid(np.linspace(-1, 1, H), np.linspace(-1, 1, W), np.linspace(-1, 1, T), indexing="ij"), -1
    ).reshape(-1, 3)
    assert np.allclose(dense, ref, atol=1e-6)
    flat = torch.tensor([0, 7, H * W * T - 1])
    assert np.allclose(gc(flat).numpy(), ref[[0, 7, -1]], atol=1e-6)
    # "xy": the official get_coords (np.meshgrid default indexing) for the same C-order flattening
    X, Y, Z = np.meshgrid(np.linspace(-1, 1, W), np.linspace(-1, 1, H), np.linspace(-1, 1, T))
    official = np.hstack((X.reshape(-1, 1), Y.reshape(-1, 1), Z.reshape(-1, 1)))
    assert np.allclose(GridCoordinates((H, W, T), "xy").dense().numpy(), official, atol=1e-6)


def _task(shape=(6, 7, 9), group_size=8, gps=5, seed=3, min_adjust=0, **kw):
    rng = np.random.default_rng(0)
    vol = rng.random(shape) > 0.6
    cfg = OccupancyTaskConfig(group_size=group_size, groups_per_step=gps, epochs=3, **kw)
    return vol, OccupancyTask(vol, cfg, seed, "cpu", min_adjust_groups=min_adjust)


def test_epoch_visits_every_group_once_then_leftover_vanilla_step():
    vol, task = _task()
    n = vol.size  # 378 = 47 groups of 8 + 2 leftover voxels
    groups, leftover = chunk_groups(n, 8)
    assert task.n_groups == 47 and leftover.numel() == 2
    assert task.steps_per_epoch == math.ceil(47 / 5) + 1
    seen, gen = [], torch.Generator()
    for s in range(task.steps_per_epoch):
        b = task.batch(s, gen)
        flat = task._armed
        if s < task.steps_per_epoch - 1:
            assert b.adjust and b.inputs.shape[1:] == (8, 3)
            seen.append(flat.reshape(-1, 8))
        else:  # the leftover voxels: one plain MSE step
            assert not b.adjust and b.inputs.shape == (1, 2, 3)
            assert (flat == leftover).all()
        assert torch.equal(b.targets.reshape(-1), torch.from_numpy(vol.reshape(-1)[flat.numpy()]).float())
        assert torch.allclose(b.inputs.reshape(-1, 3), task.coords(flat))
    got = torch.cat(seen)
    assert sorted(got[:, 0].tolist()) == groups[:, 0].tolist()  # every group exactly once
    assert all((row == row[0] + torch.arange(8)).all() for row in got)  # consecutive voxels
    # a new order every epoch, reproducible from the seed (resume-safe)
    order = lambda t, e: t._permutation(e).tolist()
    assert order(task, 0) != order(task, 1)
    assert order(task, 1) == order(_task()[1], 1)


def test_iga_on_a_grid_with_fewer_groups_than_it_needs_is_refused():
    """Every step would be vanilla (each batch smaller than end + 1 groups): said, not run silently."""
    with pytest.raises(ConfigError, match="IGA needs at least 40 groups per step .* has 25 groups"):
        _task(shape=(5, 5, 8), group_size=8, gps=64, min_adjust=40)


def test_small_last_batch_is_vanilla_for_iga_and_single_leftover_is_skipped():
    _, task = _task(shape=(5, 5, 8), group_size=8, gps=6, min_adjust=4)  # 25 groups: 6,6,6,6,1
    flags = [task.batch(s, torch.Generator()).adjust for s in range(task.batches_per_epoch)]
    assert flags == [True, True, True, True, False] and task.small_last_batch
    _, t2 = _task(shape=(3, 3, 3), group_size=13, gps=1)  # 27 = 2·13 + 1 leftover voxel
    assert not t2.has_leftover_step and t2.steps_per_epoch == 2


def test_per_epoch_lr_is_the_official_staircase():
    cfg = OccupancyTaskConfig(epochs=4)
    optim = OptimConfig(lr=1.0, schedule="exponential", final_factor=0.1)
    train = TrainConfig()
    _derived_schedule(optim, train, cfg, steps_per_epoch=3, raw_train={})
    assert train.iterations == 12 and train.checkpoint_every == 30
    got = [lr_factor(optim, s, train.iterations) for s in range(12)]
    want = [0.1 ** min(s // 3 / 4, 1) for s in range(12)]  # LambdaLR(0.1**min(epoch/epochs, 1))
    assert np.allclose(got, want)
    smooth = OptimConfig(lr=1.0, schedule="exponential", final_factor=0.1)
    _derived_schedule(smooth, TrainConfig(), OccupancyTaskConfig(epochs=4, lr_decay="per_step"), 3, {})
    assert smooth.schedule == "exponential"
    with pytest.raises(ConfigError, match="train.iterations"):
        _derived_schedule(optim, TrainConfig(), cfg, 3, {"iterations": 5})


def test_task_settings_validation_names_the_key():
    with pytest.raises(ConfigError, match="task.patch_size"):
        task_config({"patch_size": 8})
    with pytest.raises(ConfigError, match="task.crop"):
        task_config({"crop": "tight"})
    with pytest.raises(ConfigError, match="task.group_size"):
        task_config({"group_size": 0})


def tiny_settings(method="vanilla", arch="PE", **task):
    t = {
        "resolution": 16,
        "group_size": 16,
        "groups_per_step": 8,
        "epochs": 2,
        "checkpoint_every_epochs": 1,
        "mesh_resolution": 16,
        "eval_chunk": 1000,
    }
    t.update(task)
    return {
        "model": {
            "architecture": arch,
            "technique": "none",
            "in_features": 3,
            "out_features": 1,
            "hidden_features": 16,
            "hidden_layers": 1,
            "pe_frequencies": 4,
        },
        "adjuster": {"kind": "iga" if method == "IGA" else "vanilla", "end": 3, "sampling": "centre"},
        "optim": {"lr": 5e-3, "schedule": "exponential", "final_factor": 0.1},
        "train": {"seed": 1, "device": "cpu", "progress": False},
        "task": t,
    }


@pytest.fixture(scope="module")
def tiny_volume(tmp_path_factory):
    d = tmp_path_factory.mktemp("occ")
    assert main(["make-shape", "--name", "sphere", "--sdf-resolution", "32", "--out", str(d / "s.ply")]) == 0
    assert main(["voxelize", "--mesh", str(d / "s.ply"), "--resolution", "16", "--out", str(d / "s.npz")]) == 0
    return d / "s.npz"


@pytest.mark.parametrize("method", ["vanilla", "IGA"])
def test_tiny_cell_end_to_end_through_the_cli(tmp_path, tiny_volume, method, capsys):
    out = tmp_path / f"PE-{method}"
    settings = tiny_settings(method)
    rc = main(
        [
            "train-occupancy",
            "--settings",
            json.dumps(settings),
            "--volume",
            str(tiny_volume),
            "--out",
            str(out),
            "--cell",
            f"occupancy/sphere/PE-{method}/s4096",
            "--threads",
            "1",
        ]
    )
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    epochs = [json.loads(line) for line in (out / "epochs.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert m["iou"] == pytest.approx(max(e["iou"] for e in epochs))  # best over epochs
    assert m["iou_final"] == pytest.approx(epochs[-1]["iou"])  # and the last one
    assert m["iou_best_state_recomputed"] == pytest.approx(m["iou"])  # the saved best state is that one
    assert 0.0 <= m["iou"] <= 1.0 and m["iou_running"] is not None
    assert m["iterations"] == 2 * m["steps_per_epoch"]
    assert m["cropped_shape"] == [hi - lo for lo, hi in m["crop_box"]]
    for f in ("pred_occupancy.npz", "mesh.ply", "provenance.json", "train_log.jsonl", "checkpoint.pt"):
        assert (out / f).exists(), f
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["iou"] == pytest.approx(m["iou"])


def test_cell_rejects_unknown_task_key_and_wrong_resolution(tmp_path, tiny_volume):
    bad = tiny_settings()
    bad["task"]["groups"] = 3
    with pytest.raises(ConfigError, match=r"task\.groups"):
        run_cell(bad, tiny_volume, tmp_path / "a", "occupancy/sphere/PE-vanilla")
    wrong = tiny_settings(resolution=32)
    with pytest.raises(ConfigError, match="task.resolution=32"):
        run_cell(wrong, tiny_volume, tmp_path / "b", "occupancy/sphere/PE-vanilla")
    rc = main(
        [
            "train-occupancy",
            "--settings",
            json.dumps(bad),
            "--volume",
            str(tiny_volume),
            "--out",
            str(tmp_path / "c"),
            "--cell",
            "occupancy/sphere/PE-vanilla/s4096",
        ]
    )
    assert rc == 2


def test_bn_cell_with_big_batches_runs(tmp_path, tiny_volume):
    s = tiny_settings(group_size=2, groups_per_step=500, epochs=1)
    s["model"]["technique"] = "bn"
    m = run_cell(s, tiny_volume, tmp_path / "bn", "occupancy/sphere/PE-BN")
    assert 0.0 <= m["iou"] <= 1.0 and m["groups"] > 500


def test_render_and_figure(tmp_path):
    from iga.report.occupancy_figures import detail_box, figure_occupancy, render, view_axis_of

    g = np.linspace(-1, 1, 20)
    X, Y, Z = np.meshgrid(g, g, g, indexing="ij")
    ball = X**2 + Y**2 + (Z * 1.5) ** 2 < 0.8
    img = render(ball, view_axis_of(ball.shape, "z"))
    hit = (img < 1).any(-1)
    assert hit[10, 10] and not hit[0, 0] and img.shape == (20, 20, 3)
    assert view_axis_of((5, 3, 9)) == 1
    with pytest.raises(ValueError, match="view axis"):
        view_axis_of((5, 3, 9), "w")
    t, left, h, w = detail_box(img, [render(np.zeros_like(ball), 2)])
    assert 0 <= t <= 20 - h and 0 <= left <= 20 - w
    save_volume(tmp_path / "gt.npz", ball)
    cropped, _ = crop(ball, "official")
    preds = {}
    for m in ("vanilla", "IGA"):
        save_volume(tmp_path / f"{m}.npz", cropped)
        preds[("PE", m)] = tmp_path / f"{m}.npz"
    figure_occupancy(tmp_path / "gt.npz", "official", preds, ["ReLU", "PE"], tmp_path / "f.png", "t")
    assert (tmp_path / "f.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="differs from the cropped ground truth"):
        figure_occupancy(tmp_path / "gt.npz", "inclusive", preds, ["PE"], tmp_path / "g.png", "t")
