"""Appendix B ablations and the paper-vs-code variants: what each cell resolves to, that the adjusters
built from those settings do what their names claim, and that Tables 4, 5 and the variants table have
the right rows and paper values. Fast: no training; Snakemake only in dry runs (which ablation cells
reuse main image cells) and one tiny end-to-end run."""

import copy
import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from snakemake_runner import run_snakemake

from iga.adjust import IGAAdjuster, build_adjuster
from iga.cells import Cell, deep_merge, enumerate_cells, resolve_settings, task_settings
from iga.configs import AdjusterConfig, validate
from iga.ntk import transformation_matrix
from iga.report.ablation_layouts import write_ablation_tables
from iga.report.ablation_tables import (
    PAPER_AVG_ITEM,
    TABLE5_NOTE,
    build_table4,
    build_table5,
    build_variants,
    collect_cell,
    describe_variant,
    reused_cells,
)
from iga.report.tables import TABLE_ROW_KEYS, read_csv
from iga.tasks.image_config import ImageCellSettings
from iga.workflow_config import validate_config

ROOT = Path(__file__).resolve().parents[1]
GRIDS = ("table4", "table5", "variants")


def load(preset: str | None = None) -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    if preset:
        config = deep_merge(config, yaml.safe_load((ROOT / "presets" / f"{preset}.yaml").read_text()))
    return config


def image_size(config) -> tuple:
    sec = config["tasks"]["image_ablation"]
    if sec["dataset"] == "kodak":
        return 512, 768  # H, W of every Kodak image (landscape ones; kodim01-03 are landscape)
    w, h = sec["embedded_size"]
    return h, w


def cells(config):
    out = {}
    for g in GRIDS:
        for c in enumerate_cells(config, "image_ablation", g):
            out.setdefault(c, []).append(g)
    return out


# --- resolved settings ----------------------------------------------------------------------
@pytest.mark.parametrize("preset", [None, "smoke"])
def test_each_ablation_cell_resolves_to_what_its_name_claims(preset):
    config = load(preset)
    validate_config(config, base=load() if preset else None)
    h, w = image_size(config)
    default_patch = task_settings(config, "image_ablation")["task"]["patch_size"]
    found = cells(config)
    assert found, "no ablation cells"
    for cell in found:
        s = resolve_settings(config, cell)
        adj, task = s["adjuster"], s["task"]
        variant = cell.variant
        if cell.base_method == "vanilla":
            assert adj["kind"] == "vanilla" and s["optim"]["lr"] == 1e-3
            continue
        assert adj["kind"] == "iga"
        assert adj["sampling"] == {"RSI": "rsi", "RI": "ri"}.get(variant, "slr"), cell
        assert adj["variant"] == ("paper" if variant == "paper" else "official"), cell
        default_quirk = task_settings(config, "image_ablation")["adjuster"]["official_indexing_quirk"]
        assert adj["official_indexing_quirk"] is {"quirk": True, "text": False, "paper": False}.get(
            variant, default_quirk
        ), cell
        patch = int(variant[1:]) if variant and variant.startswith("P") else default_patch
        assert task["patch_size"] == patch, cell
        # the architecture's IGA learning rate reaches every IGA variant, as in the main image task
        assert s["optim"]["lr"] == {"ReLU": 5e-3, "PE": 5e-3, "SIREN": 1e-3}[cell.arch], cell
        # every cell can train: patches tile the image and end < number of groups (Adam: λ_end exists)
        assert h % patch == 0 and w % patch == 0, cell
        groups = (h // patch) * (w // patch)
        assert 1 <= adj["end"] < groups, (cell, adj["end"], groups)
        validate(ImageCellSettings, s)


def test_paper_preset_ablation_grids_are_the_papers():
    config = load()
    sec = config["tasks"]["image_ablation"]
    assert sec["items"] == ["kodim01", "kodim02", "kodim03"] and sec["dataset"] == "kodak"
    found = cells(config)

    def settings(grid):
        return [resolve_settings(config, c) for c in found if grid in found[c]]

    t4 = {
        (s["model"]["architecture"], s["adjuster"]["kind"], s["adjuster"].get("sampling")) for s in settings("table4")
    }
    assert {x[2] for x in t4 if x[1] == "iga"} == {"slr", "rsi", "ri"}
    t5 = {s["task"]["patch_size"] for s in settings("table5") if s["adjuster"]["kind"] == "iga"}
    assert t5 == {16, 32, 64, 128}
    var = {(s["adjuster"]["variant"], s["adjuster"]["official_indexing_quirk"]) for s in settings("variants")}
    assert var == {("official", False), ("paper", False), ("official", True)}
    assert len(found) == 3 * 3 * 9  # 3 items x 3 archs x 9 distinct cells (shared cells train once)
    # ReLU's end 25 cannot fit 24 groups of 128x128: the only deviation from the main image settings
    assert (
        resolve_settings(config, Cell("image_ablation", "kodim01", "ReLU", "IGA-P128", 4096))["adjuster"]["end"] == 23
    )
    assert resolve_settings(config, Cell("image_ablation", "kodim01", "ReLU", "IGA-P64", 4096))["adjuster"]["end"] == 25


@pytest.mark.parametrize("arch", ["ReLU", "PE", "SIREN"])
@pytest.mark.parametrize("method", ["vanilla", "IGA"])
def test_paper_ablation_settings_equal_the_main_image_settings(arch, method):
    """Tables 4/5: 'the same settings as Experiment 6.1' — the shared cells resolve identically."""
    config = load()
    a = resolve_settings(config, Cell("image", "kodim02", arch, method, 4096))
    b = resolve_settings(config, Cell("image_ablation", "kodim02", arch, method, 4096))
    assert a == b


# --- the adjusters those settings build --------------------------------------------------------
def _adjuster(config, arch, method, seed=0):
    s = resolve_settings(config, Cell("image_ablation", "astronaut", arch, method, 4096))
    return build_adjuster(validate(AdjusterConfig, s["adjuster"]), torch.Generator().manual_seed(seed))


def test_sampling_strategies_of_the_cells_select_what_they_claim():
    config = load("smoke")
    G, P = 12, 16
    inputs = torch.rand(G, P, 2)
    targets = torch.zeros(G, P, 3)
    r1, r2 = torch.randn(G, P, 3), torch.randn(G, P, 3)
    slr = _adjuster(config, "PE", "IGA")
    for r in (r1, r2):  # SLR: the argmax of |residual| (summed over channels) in every group, every time
        got = slr.sample(inputs, r, targets)
        want = r.abs().sum(-1).argmax(1)
        assert torch.equal(got, inputs[torch.arange(G), want])
    rsi = _adjuster(config, "PE", "IGA-RSI")
    a, b = rsi.sample(inputs, r1, targets), rsi.sample(inputs, r2, targets)
    assert torch.equal(a, b)  # RSI keeps its first random choice whatever the residual
    assert not torch.equal(a, slr.sample(inputs, r1, targets))
    ri = _adjuster(config, "PE", "IGA-RI")
    c, d = ri.sample(inputs, r1, targets), ri.sample(inputs, r1, targets)
    assert not torch.equal(c, d)  # RI draws again at every step, even for the same residual
    # RSI's choice survives a checkpoint (a resumed run keeps sampling the same points)
    again = _adjuster(config, "PE", "IGA-RSI", seed=123)
    again.load_state_dict(rsi.state_dict())
    assert torch.equal(again.sample(inputs, r2, targets), a)


def test_quirk_cell_differs_from_the_default_exactly_as_the_notes_say():
    config = load("smoke")
    G, P = 6, 4
    inputs = torch.rand(G, P, 2)
    outputs, targets = torch.randn(G, P, 3), torch.zeros(G, P, 3)
    idx = outputs.abs().sum(-1).argmax(1)
    default = _adjuster(config, "SIREN", "IGA").sample(inputs, outputs, targets)
    quirk_adj = _adjuster(config, "SIREN", "IGA-quirk")
    assert isinstance(quirk_adj, IGAAdjuster) and quirk_adj.cfg.official_indexing_quirk
    quirk = quirk_adj.sample(inputs, outputs, targets)
    assert default.shape == (G, 2) and quirk.shape == (G, G, 2)
    for j in range(G):
        # group j's "sample" = the argmax positions of ALL groups taken inside group j ...
        assert torch.equal(quirk[j], inputs[j, idx])
        # ... which contains the default's own point at position j, and the others' positions besides
        assert torch.equal(quirk[j, j], default[j])
    assert not torch.equal(quirk[:, 0], default)  # elsewhere they differ


def test_paper_variant_cell_differs_only_outside_the_balanced_range():
    config = load("smoke")
    cfg_off = validate(
        AdjusterConfig, resolve_settings(config, Cell("image_ablation", "astronaut", "PE", "IGA", 4096))["adjuster"]
    )
    cfg_pap = validate(
        AdjusterConfig,
        resolve_settings(config, Cell("image_ablation", "astronaut", "PE", "IGA-paper", 4096))["adjuster"],
    )
    assert (cfg_off.variant, cfg_pap.variant) == ("official", "paper") and cfg_off.end == cfg_pap.end == 5
    n = 10
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    lam = torch.linspace(10.0, 0.5, n, dtype=torch.float64)
    K = q @ torch.diag(lam) @ q.T
    S_off = transformation_matrix(K, cfg_off.end, cfg_off.target, cfg_off.start, cfg_off.variant)
    S_pap = transformation_matrix(K, cfg_pap.end, cfg_pap.target, cfg_pap.start, cfg_pap.variant)
    for i in range(n):
        v = q[:, i]
        if i < cfg_off.end:  # inside [start, end): both balance to λ_end / λ_i
            assert torch.allclose(S_off @ v, S_pap @ v, atol=1e-9)
            assert torch.allclose(S_off @ v, lam[cfg_off.end] / lam[i] * v, atol=1e-9)
        else:  # outside: weight 1 (official code) vs λ_i (eq. 5 as printed)
            assert torch.allclose(S_off @ v, v, atol=1e-9)
            assert torch.allclose(S_pap @ v, lam[i] * v, atol=1e-9)


# --- tables ----------------------------------------------------------------------------------
def _cell_rows(
    item,
    arch,
    method,
    psnr,
    dataset="kodak",
    patch=32,
    sampling="slr",
    variant="official",
    quirk=0,
    tpi=0.01,
    groups=384,
    rss=900.0,
    gpu=None,
    device="cpu (x86_64, 2 cores)",
):
    iga = method != "vanilla"
    vals = {"psnr": psnr, "time_per_iteration_s": tpi, "peak_rss_mb": rss, "groups": groups, "patch_size": patch}
    if gpu is not None:
        vals["peak_gpu_mb"] = gpu
    if iga:
        vals.update(sampling=sampling, eq5_variant=variant, indexing_quirk=quirk)
    rows = []
    for k, v in vals.items():
        note = f"device: {device}" if k in ("time_per_iteration_s", "peak_rss_mb", "peak_gpu_mb") else ""
        rows.append(
            {
                "preset": "t",
                "task": "image_ablation",
                "dataset": dataset,
                "item": item,
                "metric": k,
                "architecture": arch,
                "method": method,
                "value": v,
                "note": note,
                "seed": 4096,
                "cell": f"image_ablation/{item}/{arch}-{method}/s4096",
            }
        )
    return rows


ITEMS = ["kodim01", "kodim02", "kodim03"]
ARCHS = ["ReLU", "PE", "SIREN"]


def _table4_rows(dataset="kodak", items=ITEMS):
    rows = []
    for i, item in enumerate(items):
        for a, arch in enumerate(ARCHS):
            rows += _cell_rows(item, arch, "vanilla", 20.0 + a + i, dataset)
            rows += _cell_rows(item, arch, "IGA", 22.0 + a + i, dataset, sampling="slr")
            rows += _cell_rows(item, arch, "IGA-RSI", 21.5 + a + i, dataset, sampling="rsi")
            rows += _cell_rows(item, arch, "IGA-RI", 21.0 + a + i, dataset, sampling="ri")
    return rows


def test_table4_has_every_strategy_and_architecture_with_the_papers_values():
    rows = build_table4(_table4_rows(), (ITEMS, ARCHS, ["vanilla", "IGA", "IGA-RSI", "IGA-RI"]), "kodak")
    assert all(list(r) == TABLE_ROW_KEYS and r["table"] == "4" for r in rows)
    avg = {(r["architecture"], r["method"]): r for r in rows if r["item"] == PAPER_AVG_ITEM}
    assert set(avg) == {(a, m) for a in ARCHS + ["average"] for m in ("vanilla", "IGA-SLR", "IGA-RSI", "IGA-RI")}
    assert avg[("ReLU", "IGA-SLR")]["paper_value"] == 25.44
    assert avg[("ReLU", "IGA-SLR")]["value"] == pytest.approx(23.0)  # mean of 22, 23, 24
    assert avg[("ReLU", "IGA-SLR")]["delta"] == pytest.approx(23.0 - 25.44)
    assert avg[("SIREN", "IGA-RSI")]["paper_value"] == 33.76
    assert avg[("PE", "IGA-RI")]["paper_value"] == 34.05
    assert avg[("average", "vanilla")]["paper_value"] == 29.42
    assert avg[("average", "IGA-SLR")]["paper_value"] == 31.46
    assert avg[("average", "IGA-SLR")]["value"] == pytest.approx(24.0)  # archs 23, 24, 25
    per_item = [r for r in rows if r["item"] in ITEMS]
    assert len(per_item) == 3 * 3 * 4 and all(r["paper_value"] == "" for r in per_item)


def test_table4_average_over_fewer_architectures_is_not_set_against_the_papers_three():
    rows = build_table4(_table4_rows(), (ITEMS, ["PE", "SIREN"], ["vanilla", "IGA"]), "kodak")
    avg = {(r["architecture"], r["method"]): r for r in rows if r["item"] == PAPER_AVG_ITEM}
    assert avg[("PE", "IGA-SLR")]["paper_value"] != ""  # per architecture: the paper's own row
    assert avg[("average", "IGA-SLR")]["paper_value"] == "" and avg[("average", "IGA-SLR")]["delta"] == ""


def test_table4_other_items_get_no_paper_value_and_duplicate_strategies_are_refused():
    rows = build_table4(
        _table4_rows("embedded", ["astronaut", "coffee"]),
        (["astronaut", "coffee"], ARCHS, ["vanilla", "IGA", "IGA-RSI", "IGA-RI"]),
        "embedded",
    )
    assert {r["item"] for r in rows} == {"astronaut", "coffee", "average"}
    assert all(r["paper_value"] == "" and r["delta"] == "" for r in rows)
    # a subset of the paper's items is not the paper's average either
    rows = build_table4(_table4_rows(items=ITEMS[:2]), (ITEMS[:2], ARCHS, ["vanilla", "IGA"]), "kodak")
    assert all(r["paper_value"] == "" for r in rows)
    bad = _table4_rows()
    for r in bad:
        if r["method"] == "IGA-RI" and r["metric"] == "sampling":
            r["value"] = "slr"
    with pytest.raises(ValueError, match="same sampling"):
        build_table4(bad, (ITEMS, ARCHS, ["vanilla", "IGA", "IGA-RSI", "IGA-RI"]), "kodak")


def _table5_rows(gpu=False):
    rows = []
    for item in ITEMS:
        for a, arch in enumerate(ARCHS):
            g = 100.0 if gpu else None
            rows += _cell_rows(item, arch, "vanilla", 20.0, tpi=0.01, gpu=g)
            for m, p, psnr, tpi, groups in (
                ("IGA-P16", 16, 24.0, 0.05, 1536),
                ("IGA", 32, 23.0 + a, 0.02, 384),
                ("IGA-P64", 64, 22.0, 0.012, 96),
                ("IGA-P128", 128, 21.0, 0.011, 24),
            ):
                rows += _cell_rows(
                    item,
                    arch,
                    m,
                    psnr,
                    patch=p,
                    tpi=tpi,
                    groups=groups,
                    gpu=(g * p if gpu else None),
                    device="cuda (NVIDIA H200)" if gpu else "cpu (x86_64, 2 cores)",
                )
    return rows


def test_table5_has_group_sizes_deltas_times_and_no_paper_values():
    methods = ["vanilla", "IGA-P16", "IGA", "IGA-P64", "IGA-P128"]
    rows = build_table5(_table5_rows(gpu=True), (ITEMS, ARCHS, methods), "kodak")
    assert all(list(r) == TABLE_ROW_KEYS and r["table"] == "5" for r in rows)
    assert all(r["paper_value"] == "" for r in rows)
    assert all(TABLE5_NOTE in r["note"] for r in rows if r["metric"] in ("psnr", "delta_vs_vanilla", "delta_avg"))
    avg = {(r["metric"], r["architecture"], r["method"]): r for r in rows if r["item"] == PAPER_AVG_ITEM}
    assert {m for (_, _, m) in avg} == {"vanilla", "IGA-P16", "IGA-P32", "IGA-P64", "IGA-P128"}
    assert avg[("delta_vs_vanilla", "PE", "IGA-P32")]["value"] == pytest.approx(4.0)  # 24 - 20
    assert avg[("delta_avg", "average", "IGA-P32")]["value"] == pytest.approx(4.0)  # (3 + 4 + 5) / 3
    assert avg[("delta_avg", "average", "IGA-P128")]["value"] == pytest.approx(1.0)
    assert ("delta_avg", "average", "vanilla") not in avg
    t = avg[("time_per_iteration_s", "average", "IGA-P16")]
    assert t["value"] == pytest.approx(0.05) and "cuda (NVIDIA H200)" in t["note"]  # measured, device named
    assert avg[("peak_gpu_mb", "SIREN", "IGA-P16")]["value"] == pytest.approx(1600.0)
    assert avg[("groups", "ReLU", "IGA-P128")]["value"] == 24
    # a CPU run has no GPU-memory rows
    cpu = build_table5(_table5_rows(gpu=False), (ITEMS, ARCHS, methods), "kodak")
    assert not any(r["metric"] == "peak_gpu_mb" for r in cpu)


def test_variants_table_puts_table6_iga_values_beside_each_variant():
    rows = []
    for item in ITEMS:
        for arch in ARCHS:
            rows += _cell_rows(item, arch, "IGA", 25.0)
            rows += _cell_rows(item, arch, "IGA-paper", 24.0, variant="paper")
            rows += _cell_rows(item, arch, "IGA-quirk", 26.0, quirk=1)
    out = build_variants(rows, (ITEMS, ARCHS, ["IGA", "IGA-paper", "IGA-quirk"]), "kodak")
    assert all(list(r) == TABLE_ROW_KEYS and r["table"] == "variants" for r in out)
    by = {(r["item"], r["architecture"], r["method"]): r for r in out}
    assert len(out) == 3 * 3 * (3 + 1)
    assert by[("kodim01", "ReLU", "IGA-quirk")]["paper_value"] == 20.42  # Table 6, ReLU+IGA, Kodak 1
    assert by[("kodim03", "PE", "IGA-paper")]["paper_value"] == 37.91
    assert by[("kodim01", "ReLU", "IGA-quirk")]["delta"] == pytest.approx(26.0 - 20.42)
    avg = by[(PAPER_AVG_ITEM, "ReLU", "IGA")]
    assert avg["paper_value"] == pytest.approx((20.42 + 27.71 + 28.20) / 3)  # = Table 4's ReLU SLR 25.44
    assert "= the official code" in by[("kodim02", "SIREN", "IGA-quirk")]["note"]
    assert "= the paper text" in by[("kodim02", "SIREN", "IGA-paper")]["note"]
    emb = build_variants(
        [dict(r, item="astronaut", dataset="embedded") for r in rows if r["item"] == "kodim01"],
        (["astronaut"], ARCHS, ["IGA", "IGA-paper", "IGA-quirk"]),
        "embedded",
    )
    assert all(r["paper_value"] == "" for r in emb)


def test_variants_layout_shows_the_average_column_only_over_several_items():
    from iga.report.ablation_layouts import variants

    rows = []
    for item in ITEMS:
        rows += _cell_rows(item, "PE", "IGA", 25.0)
        rows += _cell_rows(item, "PE", "IGA-quirk", 26.0, quirk=1)
    grid = (["PE"], ["IGA", "IGA-quirk"])
    several = build_variants(rows, (ITEMS, *grid), "kodak")
    one = build_variants([r for r in rows if r["item"] == "kodim03"], (["kodim03"], *grid), "kodak")
    assert any("average" in r["item"] for r in one)  # the long form keeps it
    assert variants(several, "s").header == ["Architecture", "Variant", *ITEMS, PAPER_AVG_ITEM]
    assert variants(one, "s").header == ["Architecture", "Variant", "kodim03"]
    assert variants(one, "s").notes == ["Closest to the paper on kodim03: PE: IGA-quirk"]  # 26 nearer 37.91


def test_variant_descriptions():
    assert "[= the paper text]" in describe_variant("paper", 0)
    assert "[= the official code]" in describe_variant("official", "1")
    assert "[the code's weight, the text's sampling]" in describe_variant("official", "0")
    assert "[the code's weight, the text's sampling; top-k eigensolver]" in describe_variant("official", "0", "topk")
    assert "top-k eigensolver" in describe_variant("official", "0", "topk")
    assert "eigensolver" not in describe_variant("official", "0", "auto")  # the default goes unsaid


def test_collect_reads_a_cell_and_writes_all_three_tables(tmp_path):
    work = tmp_path / "work" / "t"
    rows = []
    for arch in ARCHS:
        for method, adj, patch in (
            ("vanilla", {"kind": "vanilla"}, 4),
            ("IGA", {"kind": "iga", "end": 5}, 4),
            ("IGA-RSI", {"kind": "iga", "end": 5, "sampling": "rsi"}, 4),
            ("IGA-RI", {"kind": "iga", "end": 5, "sampling": "ri"}, 4),
            ("IGA-P2", {"kind": "iga", "end": 5}, 2),
            ("IGA-paper", {"kind": "iga", "end": 5, "variant": "paper"}, 4),
            ("IGA-quirk", {"kind": "iga", "end": 5, "official_indexing_quirk": True}, 4),
        ):
            d = work / "image_ablation" / "astronaut" / f"{arch}-{method}" / "s4096"
            d.mkdir(parents=True)
            (d / "metrics.json").write_text(
                json.dumps({"psnr": 20.0, "psnr_final": 19.0, "iterations": 10, "groups": 8})
            )
            (d / "provenance.json").write_text(
                json.dumps(
                    {
                        "cell": f"image_ablation/astronaut/{arch}-{method}/s4096",
                        "device": "cpu (x, 2 cores)",
                        "time_per_iteration_s": 0.01,
                        "peak_rss_mb": 900.0,
                        "wall_time_s": 1.0,
                        "settings": {"adjuster": adj, "task": {"patch_size": patch}, "optim": {"lr": 1e-3}},
                    }
                )
            )
            rows += collect_cell(d / "metrics.json", "t", "embedded")
    got = {(r["architecture"], r["method"], r["metric"]): r for r in rows}
    assert got[("PE", "IGA-RSI", "sampling")]["value"] == "rsi"
    assert got[("PE", "IGA-quirk", "indexing_quirk")]["value"] == 1
    assert got[("PE", "IGA-paper", "eq5_variant")]["value"] == "paper"
    assert got[("PE", "IGA-P2", "patch_size")]["value"] == 2
    assert ("PE", "vanilla", "sampling") not in got
    assert (
        got[("PE", "IGA", "job_wall_time_s")]["value"] == ""
        and "predates the result record" in got[("PE", "IGA", "job_wall_time_s")]["note"]
    )
    section = {
        "items": ["astronaut"],
        "architectures": ARCHS,
        "grids": {
            "table4": {"methods": ["vanilla", "IGA", "IGA-RSI", "IGA-RI"]},
            "table5": {"methods": ["vanilla", "IGA-P2", "IGA"]},
            "variants": {"methods": ["IGA", "IGA-paper", "IGA-quirk"]},
        },
    }
    paths = write_ablation_tables(rows, section["grids"], section, "embedded", tmp_path / "tables", "TEST scale")
    assert {p.name for p in paths} == {
        f"{t}.{e}"
        for t in ("table4_sampling", "table5_group_size", "variants_paper_vs_code")
        for e in ("csv", "md", "tex")
    }
    t5 = read_csv(tmp_path / "tables" / "table5_group_size.csv")
    assert {r["method"] for r in t5} == {"vanilla", "IGA-P2", "IGA-P4"}
    md = (tmp_path / "tables" / "table5_group_size.md").read_text()
    assert "TEST scale" in md and "cpu (x, 2 cores)" in md and "not transcribed" in md
    assert "| SLR |" in (tmp_path / "tables" / "table4_sampling.md").read_text()


def test_collect_of_a_reused_image_cell_keeps_the_task_and_names_the_trained_cell(tmp_path):
    work = tmp_path / "work" / "t"
    d = work / "image" / "kodim01" / "PE-IGA" / "s4096"  # a main image cell the workflow handed to the ablation
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(
        json.dumps({"psnr": 30.0, "psnr_final": 29.0, "iterations": 10, "groups": 8, "lpips": 0.1})
    )
    (d / "provenance.json").write_text(
        json.dumps(
            {
                "cell": "image/kodim01/PE-IGA/s4096",
                "device": "cpu (x, 2 cores)",
                "time_per_iteration_s": 0.01,
                "record_version": 2,
                "trained_this_run": True,
                "job_wall_time_s": 12.5,  # iga.result_record
                "settings": {"adjuster": {"kind": "iga", "end": 5}, "task": {"patch_size": 4}, "optim": {"lr": 5e-3}},
            }
        )
    )
    rows = collect_cell(d / "metrics.json", "t", "kodak")
    assert {r["task"] for r in rows} == {"image_ablation"} and {r["cell"] for r in rows} == {
        "image/kodim01/PE-IGA/s4096"
    }
    got = {r["metric"]: r for r in rows}
    assert got["psnr"]["value"] == 30.0 and got["sampling"]["value"] == "slr"
    assert got["job_wall_time_s"]["value"] == 12.5  # the image cell's own record
    assert reused_cells(rows) == ["image/kodim01/PE-IGA/s4096"]
    t4 = build_table4(rows, (["kodim01"], ["PE"], ["IGA"]), "kodak")
    note = next(r["note"] for r in t4 if r["item"] == "kodim01")
    assert "cell image/kodim01/PE-IGA/s4096" in note and "reused" in note


# --- reuse of identical main image cells (workflow dry runs) ---------------------------------------
TINY_REUSE_SETTINGS = {
    "task": {"patch_size": 4},
    "model": {"hidden_features": 16},
    "optim": {"step_size": 20, "max_steps_of_schedule": 25},
    "train": {"iterations": 20, "checkpoint_every": 10, "device": "cpu"},
}
TINY_REUSE = {  # image and image_ablation on the same 16x16 picture with the same settings
    "preset": "pytest_reuse",
    "scale_note": "TEST scale",
    "lpips": {"enabled": False},
    "resources": {
        "train_image": {"gpu": 0, "mem_mb": 500, "runtime": 5, "threads": 1},
        "train_image_ablation": {"gpu": 0, "mem_mb": 500, "runtime": 5, "threads": 1},
    },
    "tasks": {
        "toy": {"enabled": False},
        "occupancy": {"enabled": False},
        "nerf": {"enabled": False},
        "image": {
            "dataset": "embedded",
            "items": ["astronaut"],
            "embedded_size": [16, 16],
            "architectures": ["PE"],
            "methods": ["vanilla", "IGA"],
            "figures": {"crops_item": "astronaut", "crops_arch": "PE", "visual_items": ["astronaut"]},
            "settings": TINY_REUSE_SETTINGS,
            "overrides": {"PE-IGA": {"adjuster": {"end": 8}}},
        },
        "image_ablation": {
            "enabled": True,
            "dataset": "embedded",
            "items": ["astronaut"],
            "embedded_size": [16, 16],
            "architectures": ["PE"],
            "grids": {
                "table4": {"methods": ["vanilla", "IGA", "IGA-RSI"]},
                "table5": {"methods": ["vanilla", "IGA"]},
                "variants": {"methods": ["IGA"]},
            },
            "settings": TINY_REUSE_SETTINGS,
            "overrides": {"PE-IGA*": {"adjuster": {"end": 8}}},
        },
    },
}


def _reuse_workdir(tmp_path, **ablation) -> Path:
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    overlay = copy.deepcopy(TINY_REUSE)
    overlay["tasks"]["image_ablation"] = deep_merge(overlay["tasks"]["image_ablation"], ablation)
    (tmp_path / "reuse.yaml").write_text(yaml.safe_dump(overlay))
    return tmp_path


def _dry_run(workdir: Path):
    """(training jobs {rule: {cell dir}}, the cost-table shell command, stderr) of a dry run."""
    res = run_snakemake(
        workdir,
        "-n",
        "-p",
        "--configfile",
        "reuse.yaml",
        "--",
        "results/pytest_reuse/tables/table4_sampling.csv",
        "results/pytest_reuse/tables/cost.csv",
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-3000:]
    jobs = {}
    for rule, out in re.findall(r"rule (train_image\w*):.*?output: (\S+)/metrics\.json", res.stdout, re.S):
        jobs.setdefault(rule, set()).add(out.split("results/pytest_reuse/cells/", 1)[1])
    cost_cmd = next(ln for ln in res.stdout.splitlines() if "iga cost-table" in ln)
    return jobs, cost_cmd, res.stderr


def test_identical_ablation_cells_reuse_the_image_cells(tmp_path):
    jobs, cost_cmd, err = _dry_run(_reuse_workdir(tmp_path))
    assert jobs["train_image"] == {"image/astronaut/PE-vanilla/s4096", "image/astronaut/PE-IGA/s4096"}
    assert jobs["train_image_ablation"] == {"image_ablation/astronaut/PE-IGA-RSI/s4096"}  # ablation-only: trained
    assert "image_ablation: 2 of 3 cells reuse identical image cells" in err
    # the cost table lists every trained cell once
    cells = re.findall(r"results/pytest_reuse/cells/(\S+)/metrics\.json", cost_cmd)
    assert sorted(cells) == [
        "image/astronaut/PE-IGA/s4096",
        "image/astronaut/PE-vanilla/s4096",
        "image_ablation/astronaut/PE-IGA-RSI/s4096",
    ]


def test_an_ablation_cell_whose_settings_differ_is_trained_separately(tmp_path):
    jobs, _, err = _dry_run(_reuse_workdir(tmp_path, overrides={"PE-IGA": {"optim": {"lr": 2.0e-3}}}))
    assert jobs["train_image_ablation"] == {
        "image_ablation/astronaut/PE-IGA/s4096",
        "image_ablation/astronaut/PE-IGA-RSI/s4096",
    }
    assert "image_ablation: 1 of 3 cells reuse" in err  # vanilla still identical
    # another picture size (same name, other input file): nothing is shared
    jobs, _, err = _dry_run(_reuse_workdir(tmp_path, embedded_size=[16, 12]))
    assert len(jobs["train_image_ablation"]) == 3 and "reuse" not in err


def test_reuse_can_be_switched_off(tmp_path):
    jobs, cost_cmd, err = _dry_run(_reuse_workdir(tmp_path, reuse_image_cells=False))
    assert jobs["train_image_ablation"] == {
        f"image_ablation/astronaut/PE-{m}/s4096" for m in ("vanilla", "IGA", "IGA-RSI")
    }
    assert len(jobs["train_image"]) == 2 and "reuse" not in err
    assert len(re.findall(r"metrics\.json", cost_cmd)) == 5


def test_tiny_ablation_end_to_end_with_reused_cells(tmp_path):
    workdir = _reuse_workdir(tmp_path)
    res = run_snakemake(
        workdir,
        "--configfile",
        "reuse.yaml",
        "--",
        "results/pytest_reuse/tables/table4_sampling.csv",
        "results/pytest_reuse/tables/cost.csv",
        timeout=900,
    )
    assert res.returncode == 0, (res.stdout + res.stderr)[-4000:]
    assert not (workdir / "work" / "pytest_reuse" / "image_ablation" / "astronaut" / "PE-IGA").exists()
    long = read_csv(workdir / "results" / "pytest_reuse" / "metrics" / "image_ablation_long.csv")
    psnr = {r["method"]: r for r in long if r["metric"] == "psnr"}
    assert {r["task"] for r in long} == {"image_ablation"}
    assert (
        psnr["IGA"]["cell"] == "image/astronaut/PE-IGA/s4096"
        and psnr["IGA-RSI"]["cell"] == "image_ablation/astronaut/PE-IGA-RSI/s4096"
    )
    t4 = read_csv(workdir / "results" / "pytest_reuse" / "tables" / "table4_sampling.csv")
    got = {(r["item"], r["method"]): r for r in t4 if r["architecture"] == "PE"}
    assert set(got) >= {("astronaut", m) for m in ("vanilla", "IGA-SLR", "IGA-RSI")}
    assert float(got[("astronaut", "IGA-SLR")]["value"]) == pytest.approx(float(psnr["IGA"]["value"]))
    cost = read_csv(workdir / "results" / "pytest_reuse" / "tables" / "cost.csv")
    cells = {(r["task"], r["method"]) for r in cost}
    assert cells == {("image", "vanilla"), ("image", "IGA"), ("image_ablation", "IGA-RSI")}  # each trained cell once
    assert len([r for r in cost if r["metric"] == "job_wall_time_s"]) == 3


def test_a_grid_without_cells_writes_no_table(tmp_path):
    """The mini preset runs Table 4 only: no empty Table 5 / variants table that looks like a result."""
    workdir = _reuse_workdir(
        tmp_path, grids={"table5": {"items": [], "methods": []}, "variants": {"items": [], "methods": []}}
    )
    res = run_snakemake(workdir, "-n", "--configfile", "reuse.yaml")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert "results/pytest_reuse/tables/table4_sampling.csv" in out
    assert "table5_group_size" not in out and "variants_paper_vs_code" not in out
