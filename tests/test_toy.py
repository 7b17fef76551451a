"""Toy studies (paper section 5): Δ_k, the exact-NTK adjustment, the 2-layer net's kernel, cells via the CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from iga.cli import main
from iga.configs import ConfigError
from iga.metrics import relative_spectral_error
from iga.ntk import analytic_relu_ntk, entk, transformation_matrix
from iga.tasks.toy import KernelMonitor, ToyTask, TwoLayerReLU, build_cell, make_signal, spectral_bins
from iga.tasks.toy_config import TwoLayerConfig, balanced_eigenvalues
from iga.tasks.toy_config import validate_cell as validate

ROOT = Path(__file__).resolve().parents[1]


def exp1_settings(kind="vanilla", end=3, group=1, n=32, width=64, its=30, **task):
    s = {
        "task": {
            "experiment": "exp1",
            "n_points": n,
            "freqs": [0.2, 0.4, 0.8, 1.6],
            "group_size": group,
            "eval_every": 10,
            "save_residuals": True,
            "kernel_monitor": True,
        },
        "model": {"architecture": "TwoLayer", "hidden_features": width, "technique": "none"},
        "adjuster": {"kind": kind, "end": end, "target": "start", "sampling": "centre"},
        "optim": {"optimizer": "sgd", "lr": 0.1},
        "train": {
            "iterations": its,
            "seed": 16,
            "checkpoint_every": 10,
            "device": "cpu",
            "progress": False,
            "log_every": 10,
        },
    }
    s["task"].update(task)
    return s


def exp2_settings(arch="ReLU", group=4, end=1, kind="iga", n=64, its=20):
    return {
        "task": {"experiment": "exp2", "n_points": n, "freqs": [2, 4, 6], "group_size": group, "eval_every": 5},
        "model": {
            "architecture": arch,
            "in_features": 1,
            "out_features": 1,
            "hidden_features": 16,
            "hidden_layers": 1,
            "first_omega0": 5.0,
            "hidden_omega0": 5.0,
            "technique": "none",
        },
        "adjuster": {"kind": kind, "end": end, "target": "end", "sampling": "centre"},
        "optim": {"optimizer": "adam", "lr": 1e-3},
        "train": {
            "iterations": its,
            "seed": 16,
            "checkpoint_every": 0,
            "device": "cpu",
            "progress": False,
            "log_every": 5,
        },
    }


# --- Δ_k (eq. 7) -------------------------------------------------------------------------------
def test_relative_spectral_error_is_eq7_on_a_known_spectrum():
    n = 256
    t = np.arange(n) / n
    bins = [3, 7, 12]
    target = sum(np.sin(2 * np.pi * k * t) for k in bins)
    pred = target - 0.5 * np.sin(2 * np.pi * 7 * t)  # component 7 at half amplitude
    assert np.allclose(relative_spectral_error(pred, target, bins), [0.0, 0.5, 0.0], atol=1e-12)
    # a phase error of the same size: |e^{iφ} − 1| = 2 sin(φ/2)
    pred = target - np.sin(2 * np.pi * 12 * t) + np.sin(2 * np.pi * 12 * t + 0.3)
    assert np.allclose(relative_spectral_error(pred, target, bins), [0, 0, 2 * math.sin(0.15)], atol=1e-12)
    assert np.allclose(relative_spectral_error(np.zeros(n), target, bins), 1.0)


def test_task_evaluation_reports_delta_of_the_model_output():
    x = torch.linspace(-1, 1, 64)[:, None]
    y = torch.sin(2 * math.pi * 3 * x[:, 0]) + torch.sin(2 * math.pi * 9 * x[:, 0])
    bins = spectral_bins(y.numpy(), 2)

    class Half(torch.nn.Module):  # predicts the target with the 9-cycle component halved
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, inp):
            return (torch.sin(2 * math.pi * 3 * inp) + 0.5 * torch.sin(2 * math.pi * 9 * inp)) + 0 * self.p

    task = ToyTask(x, y, 4, bins)
    out = task.evaluate(Half(), 0)
    pred = Half()(x).detach().reshape(-1).double().numpy()
    expected = relative_spectral_error(pred, y.double().numpy(), bins)
    assert out["delta_f1"] == pytest.approx(expected[0], abs=1e-6)
    assert out["delta_f2"] == pytest.approx(expected[1], abs=1e-6)
    assert out["delta_f2"] > 0.3 and out["delta_f1"] < 0.2
    assert task.curve()["delta"].shape == (1, 2)


def test_spectral_bins_are_the_official_components():
    _, y, _ = make_signal("exp1", 1024, [0.2, 0.4, 0.8, 1.6])
    assert spectral_bins(y.numpy(), 4).tolist() == [1, 3, 5, 10]
    _, y, _ = make_signal("exp2", 2048, [10, 20, 30, 40, 50, 60])
    assert spectral_bins(y.numpy(), 6).tolist() == [20, 40, 60, 80, 100, 120]


# --- exact NTK, eNTK of the 2-layer net -------------------------------------------------------
def test_exact_ntk_adjuster_uses_S_of_the_analytic_kernel_and_moves_like_eq2():
    model, task, adj, optim, train, tcfg, gen, info = build_cell(exp1_settings("ntk", end=5, n=40))
    x = task.x.double()
    S = transformation_matrix(analytic_relu_ntk(x), 5, target="start")
    assert torch.allclose(adj.S.double(), S, atol=1e-5)
    assert not torch.allclose(S, torch.eye(40, dtype=S.dtype), atol=1e-3)
    # one SGD step equals θ − η·(2/N)·Jᵀ S r (paper eq. 2 with the MSE-mean convention)
    b = task.batch(0, gen)
    params = [p for p in model.parameters() if p.requires_grad]
    out = model(b.inputs.reshape(-1, 2)).reshape(40, 1, 1)
    grads = torch.autograd.grad(adj.loss(model, b.inputs, out, b.targets), params)
    J = torch.cat(
        [
            torch.autograd.functional.jacobian(
                lambda w, bb: model.out(torch.relu(b.inputs.reshape(-1, 2) @ w.T + bb)).reshape(-1) * model.scale,
                (params[0].detach(), params[1].detach()),
            )[i].reshape(40, -1)
            for i in range(2)
        ],
        dim=1,
    )
    r = (out - b.targets).detach().reshape(-1)
    expected = 2.0 / 40 * J.T @ (adj.S @ r)
    got = torch.cat([g.reshape(-1) for g in grads])
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("scale,factor", [("2m", 1.0), ("m", 2.0)])
def test_two_layer_net_mean_entk_approaches_the_analytic_ntk(scale, factor):
    theta = torch.linspace(0, 2 * math.pi, 11)[:-1].double()
    x = torch.stack([theta.cos(), theta.sin()], 1)
    K = analytic_relu_ntk(x)
    mean, nets = torch.zeros(10, 10, dtype=torch.float64), 6
    for s in range(nets):
        torch.manual_seed(s)
        net = TwoLayerReLU(TwoLayerConfig(hidden_features=3000, scale=scale)).double()
        assert not net.out.weight.requires_grad and set(net.out.weight.abs().unique().tolist()) == {1.0}
        assert float(net.hidden.bias.detach().abs().max()) == 0.0
        mean += entk(net, x) / nets
    assert net.kernel_factor == factor
    assert float((mean / factor - K).abs().max()) < 0.02  # Monte Carlo error ~ 1/sqrt(nets·m)
    if factor == 2:
        assert float((mean - K).abs().max()) > 0.2  # the m^-1/2 net's kernel is twice the analytic one


def test_kernel_distance_shrinks_with_width():
    theta = torch.linspace(0, 2 * math.pi, 33)[:-1]
    x = torch.stack([theta.cos(), theta.sin()], 1)
    from iga.configs import AdjusterConfig
    from iga.grouping import interval_groups

    mon = KernelMonitor(
        x, analytic_relu_ntk(x.double()), AdjusterConfig(kind="entk", end=5, target="start"), interval_groups(32, 4)
    )
    rel = {}
    for m in (64, 4096):
        torch.manual_seed(0)
        rel[m] = mon(TwoLayerReLU(TwoLayerConfig(hidden_features=m)), 1.0)
    assert rel[4096]["k_rel"] < rel[64]["k_rel"] / 3  # ~ m^-1/2: a factor 8 expected
    assert set(rel[64]) == {"k_rel", "s_rel", "ke_rel", "se_rel"}


# --- settings ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda s: s["task"].update(group_size=8) or s["adjuster"].update(kind="entk"), "group_size must be 1"),
        (lambda s: s["adjuster"].update(end=40), "does not fit 32 groups"),
        (lambda s: s["task"].update(color="red"), "task.color"),
        (lambda s: s["task"].update(group_size=5), "must divide"),
        (lambda s: s["model"].update(depth=3), "model.depth"),
    ],
)
def test_bad_toy_settings_name_the_problem(mutate, match):
    s = exp1_settings("iga", group=1)
    mutate(s)
    with pytest.raises(ConfigError, match=match):
        validate(s)


def test_ntk_is_exp1_only_and_balanced_counts_follow_the_paper():
    with pytest.raises(ConfigError, match="exp1 only"):
        validate(exp2_settings(kind="ntk", group=1))
    assert balanced_eigenvalues({"end": 3, "target": "end"}) == 4  # official --xuhao 3 --replace_end 3
    assert balanced_eigenvalues({"end": 15, "target": "start"}) == 15


def test_presets_enumerate_every_toy_cell():
    from iga.cells import Cell, deep_merge, enumerate_cells, resolve_settings
    from iga.workflow_config import validate_config

    paper = yaml.safe_load((ROOT / "config.yaml").read_text())
    smoke = deep_merge(paper, yaml.safe_load((ROOT / "presets" / "smoke.yaml").read_text()))
    validate_config({"preset": "t", "tasks": {"toy": paper["tasks"]["toy"]}})
    validate_config({"preset": "t", "tasks": {"toy": smoke["tasks"]["toy"]}}, base=paper)
    # paper: 4 widths × 2 seeds × (vanilla + 3 methods × 5 ends); 2 seeds × 2 archs × (1 + 3 groups × 4 ends)
    assert len(enumerate_cells(paper, "toy", "exp1")) == 128
    assert len(enumerate_cells(paper, "toy", "exp2")) == 52
    s = resolve_settings(paper, Cell("toy", "exp2_s32", "SIREN", "IGA-g4e6", 32))
    assert (s["task"]["group_size"], s["adjuster"]["end"], s["train"]["seed"], s["model"]["first_omega0"]) == (
        4,
        5,
        32,
        5.0,
    )
    s = resolve_settings(paper, Cell("toy", "exp1_w8192_s16", "TwoLayer", "IGA-e13", 16))
    assert (s["task"]["group_size"], s["adjuster"]["end"], s["model"]["hidden_features"], s["optim"]["lr"]) == (
        8,
        13,
        8192,
        0.1,
    )
    assert resolve_settings(paper, Cell("toy", "exp1_w8192_s16", "TwoLayer", "eNTK-e13", 16))["task"]["group_size"] == 1


# --- end to end through the CLI -----------------------------------------------------------------
def _run(tmp: Path, name: str, settings: dict) -> Path:
    seed = f"s{settings['train']['seed']}" if "seed" in settings.get("train", {}) else "s4096"
    out = tmp / "toy" / name.split("/")[0] / name.split("/")[1] / seed
    cell = f"toy/{name}/{seed}"
    assert main(["toy-train", "--settings", json.dumps(settings), "--out", str(out), "--cell", cell]) == 0
    return out


def test_toy_cells_run_end_to_end_resume_and_report(tmp_path):
    cells = {
        "exp1_w64_s16/TwoLayer-vanilla": exp1_settings("vanilla"),
        "exp1_w64_s16/TwoLayer-NTK-e3": exp1_settings("ntk", end=3),
        "exp1_w64_s16/TwoLayer-eNTK-e3": exp1_settings("entk", end=3, init_samples=3),
        "exp1_w64_s16/TwoLayer-IGA-e3": exp1_settings("iga", end=3, group=4),
    }
    outs = {k: _run(tmp_path, k, v) for k, v in cells.items()}
    for k, out in outs.items():
        m = json.loads((out / "metrics.json").read_text())
        assert (out / "provenance.json").exists()
        c = np.load(out / "curve.npz")
        assert c["steps"].tolist() == [0, 10, 20, 30] and c["delta"].shape == (4, 4)
        assert c["residual"].shape == (4, 32) and c["bins"].tolist() == m["bins"]
        assert m["mse_final"] < m["mse_init"]
        assert ("s_rel" in c) == (k.split("-")[1] in ("eNTK", "IGA")) and ("se_rel" in c) == ("IGA" in k)
    m = json.loads((outs["exp1_w64_s16/TwoLayer-eNTK-e3"] / "metrics.json").read_text())
    assert m["init_samples"] == 3 and m["k_rel_init_mc_std"] > 0 and m["s_rel_init_mc"] > 0
    ntk = np.load(outs["exp1_w64_s16/TwoLayer-NTK-e3"] / "curve.npz")
    van = np.load(outs["exp1_w64_s16/TwoLayer-vanilla"] / "curve.npz")
    assert not np.allclose(ntk["residual"][-1], van["residual"][-1])  # the adjustment changes the dynamics
    assert np.array_equal(ntk["residual"][0], van["residual"][0])  # from the same initialisation

    # a finished cell rerun (forced: metrics.json gone) retrains from scratch to the same evaluation history
    out = outs["exp1_w64_s16/TwoLayer-IGA-e3"]
    before = dict(np.load(out / "curve.npz"))
    (out / "metrics.json").unlink()
    _run(tmp_path, "exp1_w64_s16/TwoLayer-IGA-e3", cells["exp1_w64_s16/TwoLayer-IGA-e3"])
    after = np.load(out / "curve.npz")
    assert all(np.array_equal(before[k], after[k]) for k in before)

    e2 = {
        "exp2_s16/ReLU-vanilla": exp2_settings(kind="vanilla"),
        "exp2_s16/ReLU-IGA-g4e2": exp2_settings(group=4, end=1),
        "exp2_s16/ReLU-IGA-g1e2": exp2_settings(group=1, end=1),
    }
    e2_outs = [_run(tmp_path, k, v) for k, v in e2.items()]

    m1 = [str(o / "metrics.json") for o in outs.values()]
    m2 = [str(o / "metrics.json") for o in e2_outs]
    tables, figs = tmp_path / "tables", tmp_path / "figures"
    assert main(["toy-tables", "--experiment", "exp1", "--preset", "test", "--out-dir", str(tables)] + m1) == 0
    assert main(["toy-tables", "--experiment", "exp2", "--preset", "test", "--out-dir", str(tables)] + m2) == 0
    import csv

    rows = list(csv.DictReader(open(tables / "exp1_final_errors.csv")))
    assert rows[0].keys() == {
        "table",
        "task",
        "dataset",
        "item",
        "metric",
        "architecture",
        "method",
        "value",
        "std",
        "n",
        "paper_value",
        "delta",
        "within_noise",
        "note",
        "caveat",
        "scale",
    }
    assert all(r["scale"] == "test" for r in rows)  # no --scale-note: the preset's name
    assert {r["method"] for r in rows} == {"vanilla", "NTK-e3", "eNTK-e3", "IGA-e3"}
    width = list(csv.DictReader(open(tables / "exp1_convergence_with_width.csv")))
    assert {r["method"] for r in width if r["metric"] == "traj_dist_max"} == {"eNTK-e3", "IGA-e3", "vanilla"}
    assert (
        main(
            [
                "toy-figures",
                "--experiment",
                "exp1",
                "--out",
                f"fig1={figs / 'f1.png'}",
                "--out",
                f"fig6={figs / 'f6.png'}",
                "--out",
                f"width={figs / 'w.png'}",
            ]
            + m1
        )
        == 0
    )
    assert (
        main(
            [
                "toy-figures",
                "--experiment",
                "exp2",
                "--fig2-group-size",
                "4",
                "--out",
                f"fig2={figs / 'f2.png'}",
                "--out",
                f"fig3={figs / 'f3.png'}",
                "--out",
                f"fig7={figs / 'f7.png'}",
                "--out",
                f"fig8={figs / 'f8.png'}",
            ]
            + m2
        )
        == 0
    )
    for f in ("f1", "f6", "w", "f2", "f3", "f7", "f8"):
        assert (figs / f"{f}.png").stat().st_size > 10_000


@pytest.mark.parametrize("empty, kept", [("exp2", "exp1"), ("exp1", "exp2")])
def test_a_toy_run_of_one_experiment_plans_its_tables_and_figures(tmp_path, empty, kept):
    """Each experiment's table and figure rules stand on their own (exp2's once sat inside exp1's block)."""
    from snakemake_runner import ROOT, run_snakemake

    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    only = tmp_path / "only.yaml"
    only.write_text(
        "tasks: {image: {enabled: false}, image_ablation: {enabled: false}, occupancy: {enabled: false},"
        f" nerf: {{enabled: false}}, toy: {{grids: {{{empty}: {{items: []}}}}}}}}\n"
    )
    res = run_snakemake(tmp_path, "-n", "--configfile", str(ROOT / "presets" / "smoke.yaml"), str(only))
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-2000:]
    for rule in (f"tables_toy_{kept}", f"figures_toy_{kept}"):
        assert f"rule {rule}:" in out, rule
    assert f"rule tables_toy_{empty}:" not in out and f"rule figures_toy_{empty}:" not in out
