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
    figure_visual(
        {"x": tmp_path / "gt.png"}, {("x", "PE", m): p for m, p in recons.items()}, ["PE"], tmp_path / "visual.png", "t"
    )
    assert (tmp_path / "crops.png").stat().st_size > 1000 and (tmp_path / "visual.png").stat().st_size > 1000


# --- every figure: axes labelled, mathtext rendered, no silent empty panel ------------------------
import json  # noqa: E402

import pytest  # noqa: E402


def _draw(fig):
    """Render once (mathtext errors surface here, not at savefig time only)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()


def assert_labelled(fig):
    """Every data panel (lines, markers or a heatmap with ticks) has x and y labels; every colorbar a label."""
    checked = 0
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            assert ax.get_ylabel() or ax.get_xlabel(), "a colorbar without a label"
            continue
        has_data = bool(ax.lines or ax.collections) or (bool(ax.images) and len(ax.get_xticks()) > 0)
        if has_data:
            assert ax.get_xlabel(), f"panel {ax.get_title()!r}: no x label"
            assert ax.get_ylabel(), f"panel {ax.get_title()!r}: no y label"
            checked += 1
    assert checked, "no data panel found"


def _toy_cell(root, item, name, exp, **m):
    d = root / "toy" / item / name / "s16"
    d.mkdir(parents=True)
    steps = np.arange(0, 200, 20)
    freqs = m.pop("freqs", [1, 3, 5, 10])
    decay = np.exp(-steps[:, None] / (40.0 * (1 + np.arange(len(freqs)))))
    np.savez(d / "curve.npz", steps=steps, mse=1 + decay[:, 0], delta=decay)
    metrics = {
        "experiment": exp,
        "width": 64,
        "seed": 16,
        "freqs": freqs,
        "bins": list(range(1, len(freqs) + 1)),
        "balanced": None,
        "group_size": 1,
        **m,
    }
    (d / "metrics.json").write_text(json.dumps(metrics))
    return d / "metrics.json"


def test_toy_figures_label_every_axis_and_draw_the_baseline_once(tmp_path):
    from iga.report import toy_figures as tf

    exp1 = [_toy_cell(tmp_path, "exp1_w64_s16", "TwoLayer-vanilla", "exp1")] + [
        _toy_cell(tmp_path, "exp1_w64_s16", f"TwoLayer-{b}-e3", "exp1", balanced=3) for b in ("NTK", "eNTK", "IGA")
    ]
    exp2 = []
    for arch in ("ReLU", "SIREN"):
        exp2.append(_toy_cell(tmp_path, "exp2_s16", f"{arch}-vanilla", "exp2", freqs=[5, 10, 15, 20]))
        for g in (1, 4):
            for e in (2, 4):
                exp2.append(
                    _toy_cell(
                        tmp_path,
                        "exp2_s16",
                        f"{arch}-IGA-g{g}e{e}",
                        "exp2",
                        freqs=[5, 10, 15, 20],
                        balanced=e,
                        group_size=g,
                    )
                )
    figs = tf.exp1_figures(tf.load_cells(exp1), {"fig1": tmp_path / "f1.png", "fig6": tmp_path / "f6.png"})
    figs |= tf.exp2_figures(
        tf.load_cells(exp2),
        {k: tmp_path / f"{k}.png" for k in ("fig2", "fig3", "fig7", "fig8")},
        component=2,
        fig2_group=4,
    )
    for f in ("f1", "f6", "fig2", "fig3", "fig7", "fig8"):
        assert (tmp_path / f"{f}.png").stat().st_size > 5000
    fig7 = figs["fig7"]
    _draw(fig7)
    assert_labelled(fig7)
    baselines = [ax for ax in fig7.axes if "vanilla baseline" in ax.get_title()]
    assert len(baselines) == 2  # once per architecture, not once per group-size row
    cbar = [ax for ax in fig7.axes if ax.get_label() == "<colorbar>"]
    assert cbar and "$\\Delta_k" in cbar[0].get_ylabel()  # mathtext, not the literal "Δ_k"
    for key in ("fig1", "fig6", "fig2", "fig3"):
        assert_labelled(figs[key])


def _image_cell(root, item, arch, method, psnrs):
    d = root / "image" / item / f"{arch}-{method}" / "s4096"
    d.mkdir(parents=True)
    with open(d / "train_log.jsonl", "w") as f:
        for step, p in enumerate(psnrs):
            f.write(json.dumps({"step": step, "loss": 0.1, "psnr": p}) + "\n")
        f.write(json.dumps({"step": len(psnrs) - 1, "loss": 0.1, "psnr": psnrs[-1] + 1}) + "\n")  # resumed: last wins
    return d / "train_log.jsonl"


def test_training_curves_one_line_per_method_per_architecture(tmp_path):
    from iga.report.curve_figures import figure_curves, read_curve

    logs = [
        _image_cell(tmp_path, item, arch, m, [10 + i + k for i in range(5)])
        for item in ("a", "b")
        for arch in ("ReLU", "SIREN")
        for k, m in enumerate(("vanilla", "IGA"))
    ]
    steps, vals = read_curve(logs[0], "psnr")
    assert steps.tolist() == [0, 1, 2, 3, 4] and vals[-1] == 15.0
    fig = figure_curves(logs, "psnr", tmp_path / "curves.png", "t [SCALE]")
    _draw(fig)
    assert_labelled(fig)
    assert [ax.get_title() for ax in fig.axes] == ["ReLU", "SIREN"]
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]
    assert "dB" in fig.axes[0].get_ylabel() and "2 items" in fig.axes[0].get_ylabel()
    assert "SCALE" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="no 'iou' values"):
        figure_curves(logs, "iou", tmp_path / "x.png", "t")


def _long(path, rows):
    import csv

    cols = ["preset", "task", "dataset", "item", "metric", "architecture", "method", "value", "note", "cell"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        for r in rows:
            w.writerow({"preset": "t", "task": "image", "metric": "psnr", "note": "", "cell": "", **r})
    return path


def test_ours_vs_paper_pairs_cells_with_the_papers_value(tmp_path):
    from iga.report.curve_figures import figure_vs_paper
    from iga.report.tables import reference_lookup

    paper = reference_lookup("6")[("image", "kodak", "kodim01", "psnr", "ReLU", "vanilla")]
    csv_ = _long(
        tmp_path / "image_long.csv",
        [
            {"dataset": "kodak", "item": "kodim01", "architecture": "ReLU", "method": "vanilla", "value": paper + 1},
            {"dataset": "kodak", "item": "kodim01", "architecture": "SIREN", "method": "IGA", "value": 40.0},
            {"dataset": "kodak", "item": "kodim01", "architecture": "SIREN", "method": "IGA-x", "value": 40.0},
        ],
    )
    fig = figure_vs_paper([csv_], "image", tmp_path / "vs.png", "MINI scale")
    _draw(fig)
    assert_labelled(fig)
    ax = fig.axes[0]
    offsets = np.concatenate([c.get_offsets() for c in ax.collections if len(c.get_offsets())])
    assert len(offsets) == 2 and [paper, paper + 1] in offsets.tolist()  # IGA-x has no paper value
    (line,) = [ln for ln in ax.lines if ln.get_label() == "y = x"]
    assert np.array_equal(line.get_xdata(), line.get_ydata())
    assert "MINI scale" in fig._suptitle.get_text() and "Table 6" in ax.get_xlabel()

    other = _long(
        tmp_path / "smoke.csv",
        [{"dataset": "embedded", "item": "astronaut", "architecture": "ReLU", "method": "vanilla", "value": 20.0}],
    )
    fig = figure_vs_paper([other], "image", tmp_path / "vs2.png", "SMOKE")
    assert "No cell of this run has a paper value" in fig.axes[0].texts[0].get_text()
    ssim = " ".join(fig.axes[1].texts[0].get_text().split())  # Table 7: only its caption is in the paper text
    assert "Table 7 has no transcribed ssim values" in ssim and "()" not in ssim


def test_visual_figure_shows_the_tables_psnr(tmp_path):
    """Fig. 10 prints the metrics.json PSNR (best float state, as Table 6), not the 8-bit image's."""
    rng = np.random.default_rng(0)
    io.imsave(tmp_path / "gt.png", (rng.random((16, 24, 3)) * 255).astype(np.uint8), check_contrast=False)
    d = tmp_path / "image" / "x" / "PE-IGA"
    d.mkdir(parents=True)
    io.imsave(d / "recon.png", (rng.random((16, 24, 3)) * 255).astype(np.uint8), check_contrast=False)
    (d / "metrics.json").write_text(json.dumps({"psnr": 52.0912}))
    fig = figure_visual(
        {"x": tmp_path / "gt.png"}, {("x", "PE", "IGA"): d / "recon.png"}, ["PE"], tmp_path / "visual.png", "t"
    )
    assert "52.09 dB" in fig.axes[1].get_title()
    fig = figure_crops(tmp_path / "gt.png", {"IGA": d / "recon.png"}, "PE", tmp_path / "crops.png", "t")
    _draw(fig)
    assert "52.09 dB" in fig.axes[1].get_title()


def test_occupancy_figure_explains_blank_panels(tmp_path):
    from iga.data.voxelize import save_volume
    from iga.report.occupancy_figures import figure_occupancy

    gt = np.zeros((8, 20, 12), bool)
    gt[2:6, 3:17, 2:10] = True
    save_volume(tmp_path / "gt.npz", gt)
    preds = {}
    for m, vol in (("vanilla", np.zeros_like(gt)), ("IGA", gt)):
        p = tmp_path / "occupancy" / "s" / f"PE-{m}" / "pred_occupancy.npz"
        save_volume(p, vol)
        preds[("PE", m)] = p
    fig = figure_occupancy(tmp_path / "gt.npz", "none", preds, ["PE"], tmp_path / "f5.png", "t [SCALE]")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("prediction empty" in t for t in texts) and any("no predicted voxel" in t for t in texts)
    assert all(ax.get_ylabel() for ax in fig.axes if ax.get_subplotspec().colspan.start == 0)
    img = fig.axes[0].images[0].get_array()
    assert img.shape[0] > img.shape[1]  # the longer side vertical
    assert (np.asarray(img)[0] == 1.0).all() and (np.asarray(img)[:, 0] == 1.0).all()  # a white margin


def test_cost_figure_explains_an_empty_column(tmp_path):
    """A task whose cells record no time per iteration gets a visible reason, not a blank column."""
    import time

    from iga.report.cost import cells_frame, cost_figure, read_cell
    from iga.result_record import Training, write_record

    files = []
    for cell, tpi in (("image/a/PE-IGA/s0", 0.01), ("nerf/procedural/NeRF-IGA/s0", None)):
        d = tmp_path / cell
        write_record(d, cell, {}, 0, "cpu", time.perf_counter() - 1.0, Training(10, 10, 0.5, 0.5, tpi))
        (d / "metrics.json").write_text("{}")
        files.append(d / "metrics.json")
    fig = cost_figure(cells_frame([read_cell(f) for f in files]), tmp_path / "cost.png", "t")
    _draw(fig)
    tpi = [ax for ax in fig.axes if "per iteration" in ax.get_title()][0]
    assert any("not recorded" in t.get_text() for t in tpi.texts)
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
