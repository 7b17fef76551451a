"""Paper-shaped tables: values beside the paper's, one renderer, LaTeX that compiles, notes that explain."""

import csv
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from iga.cells import deep_merge
from iga.report import render
from iga.report.ablation_layouts import write_ablation_tables
from iga.report.labels import IOU_ZERO, LPIPS_OFFLINE, reason
from iga.report.tables import TABLES, build_table, layout, read_long, with_averages, write_table

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "results").glob("*/tables/*"))
MAIN = {
    "image": ["table1_image_average", "table6_image_psnr", "table7_image_ssim", "table8_image_lpips"],
    "nerf": ["table3_nerf_average", "table10_nerf_per_scene"],
    "occupancy": ["table2_occupancy_average", "table9_occupancy_iou"],
}


def _rows(items, dataset="kodak", value=1.0, metric="psnr", task="image"):
    return [
        {
            "preset": "t",
            "task": task,
            "dataset": dataset,
            "item": i,
            "metric": metric,
            "architecture": "PE",
            "method": "IGA",
            "value": value,
            "note": "",
            "cell": "",
        }
        for i in items
    ]


def test_tables_put_the_paper_value_beside_ours():
    items = [f"kodim0{i}" for i in range(1, 9)]
    rows = build_table(TABLES["table6_image_psnr"], with_averages(_rows(items, value=30.0))).to_dict("records")
    by_item = {r["item"]: r for r in rows}
    assert by_item["kodim03"]["paper_value"] == 37.91
    assert by_item["kodim03"]["delta"] == pytest.approx(30.0 - 37.91)
    assert by_item["average"]["paper_value"] == 32.46 and by_item["average"]["value"] == 30.0
    # a subset's average is not the paper's average: no paper value beside it
    rows = build_table(TABLES["table6_image_psnr"], with_averages(_rows(items[:3])))
    assert rows.set_index("item").loc["average", "paper_value"] == ""
    # other datasets never borrow Kodak's numbers, and the table says "ours" without "(paper)"
    t = build_table(TABLES["table6_image_psnr"], with_averages(_rows(["astronaut"], dataset="embedded")))
    assert (t.paper_value == "").all()
    md = render.markdown(layout(TABLES["table6_image_psnr"], t, "TEST scale"))
    assert "ours (paper)" not in md and "TEST scale" in md


def test_a_paper_table_whose_values_are_not_transcribed_says_so_at_paper_scale_too():
    """Tables 7, 8 and Table 1's SSIM/LPIPS: the paper's text holds only their captions; on Kodak (where the
    paper has values) the table must not claim there is no paper value for these items."""
    items = [f"kodim0{i}" for i in range(1, 9)]
    t = build_table(TABLES["table7_image_ssim"], with_averages(_rows(items, value=0.9, metric="ssim")))
    assert (t.paper_value == "").all()
    md = render.markdown(layout(TABLES["table7_image_ssim"], t, "TEST scale"))
    assert "paper values not transcribed" in md and "no paper value for these items" not in md
    assert "No paper values for SSIM ↑: the body of the paper's Table 7 is not in the paper's text" in md
    rows = _rows(items, value=30.0) + _rows(items, value=0.9, metric="ssim")
    t = build_table(TABLES["table1_image_average"], with_averages(rows))
    # Table 1 keeps only the averages, over the paper's eight images here: PSNR has the paper's beside it
    assert t.set_index("metric").loc["psnr", "paper_value"] == 32.46
    md = render.markdown(layout(TABLES["table1_image_average"], t, "TEST scale"))
    assert "ours (paper)" in md and "No paper values for SSIM ↑: the body of the paper's Table 1" in md
    assert "Table 6" not in md.split("Notes:")[-1]  # PSNR's paper values exist (from Table 6)


def test_missing_values_propagate_to_the_average_with_a_short_reason():
    rows = _rows(["kodim01", "kodim02"])
    rows[1].update(value="", note="missing: could not fetch alexnet-owt-7be5be79.pth …: URLError: [Errno -2]")
    avg = with_averages(rows).set_index("item").loc["average"]
    assert avg["value"] == "" and avg["note"] == "missing for 1/2 items: " + LPIPS_OFFLINE.removeprefix("missing: ")
    assert avg["note"].count("missing") == 1  # said once


def test_reason_shortens_only_the_offline_lpips_case():
    assert reason("missing: AlexNet weights not found at /x (no internet)") == LPIPS_OFFLINE
    assert reason("missing: disabled in config") == "missing: disabled in config"


def test_iou_zero_is_explained_and_headers_carry_metric_labels(tmp_path):
    rows = _rows(["bumpy"], dataset="embedded", value=0.0, metric="iou", task="occupancy")
    write_table(TABLES["table9_occupancy_iou"], rows, tmp_path, "TEST scale")
    assert IOU_ZERO in (tmp_path / "table9_occupancy_iou.md").read_text()
    nerf = _rows(["lego"], dataset="blender", value=20.0, task="nerf")
    nerf += [dict(r, metric="ssim", value=0.5) for r in nerf]
    write_table(TABLES["table10_nerf_per_scene"], nerf, tmp_path, "TEST scale")
    assert (
        "| Method | lego PSNR ↑ | lego SSIM ↑ | average PSNR ↑ | average SSIM ↑ |"
        in (tmp_path / "table10_nerf_per_scene.md").read_text()
    )


def test_tex_escape_compiles_what_notes_contain():
    assert render.tex_escape("128^3 & 5% Δ_k") == r"$128^{3}$ \& 5\% $\Delta$\_k"
    assert render.tex_escape("a^b") == r"a\textasciicircum{}b"


def test_one_layout_renders_the_same_values_in_every_format():
    t = render.Layout("T ↑", "S", ["Method", "x"], [["PE", render.Entry("1.00", True, "2.00")]], notes=["n"])
    assert "| PE | **1.00** (2.00) |" in render.markdown(t)
    assert r"PE & \textbf{1.00} \scriptsize{(2.00)} \\" in render.latex(t)
    assert "<td><b>1.00</b> <small>(2.00)</small></td>" in render.html(
        t
    ) and "<caption>T ↑ [S]</caption>" in render.html(t)


def _regenerate(preset: str, out: Path) -> None:
    res = ROOT / "results" / preset
    scale = lambda n: next(csv.DictReader(open(res / "tables" / f"{n}.csv")))["scale"]  # noqa: E731
    for task, names in MAIN.items():
        for n in names:
            if (res / "tables" / f"{n}.csv").exists():
                write_table(TABLES[n], read_long([res / "metrics" / f"{task}_long.csv"]), out, scale(n))
    cfg = deep_merge(yaml.safe_load(open(ROOT / "config.yaml")), yaml.safe_load(open(ROOT / f"presets/{preset}.yaml")))
    sec = cfg["tasks"]["image_ablation"]
    names = [
        n
        for n in ("table4_sampling", "table5_group_size", "variants_paper_vs_code")
        if (res / "tables" / f"{n}.csv").exists()
    ]
    write_ablation_tables(
        read_long([res / "metrics" / "image_ablation_long.csv"]).to_dict("records"),
        sec["grids"],
        sec,
        sec["dataset"],
        out,
        scale(names[0]),
        names,
    )


@pytest.mark.parametrize("preset", ["smoke", "mini"])
def test_committed_tables_are_what_the_code_builds_from_the_committed_long_form(preset, tmp_path):
    _regenerate(preset, tmp_path)
    made = sorted(tmp_path.iterdir())
    assert made
    for p in made:
        assert p.read_text() == (ROOT / "results" / preset / "tables" / p.name).read_text(), p.name


def test_no_committed_note_contains_an_exception_or_url_error():
    bad = re.compile(r"\b\w+(Error|Exception)\b|Traceback|Errno|https?://")
    hits = [
        f"{p.relative_to(ROOT)}: {m.group(0)}"
        for p in COMMITTED
        if p.suffix in (".csv", ".md", ".tex")
        for m in [bad.search(p.read_text())]
        if m
    ]
    assert not hits, hits


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not on PATH (apt: texlive-latex-recommended)")
def test_every_tex_compiles(tmp_path):
    texs = [p for p in COMMITTED if p.suffix == ".tex"]
    assert texs
    failed = []
    for p in texs:
        assert "booktabs" in p.read_text().splitlines()[0]  # the header says what the table needs
        doc = tmp_path / f"{p.parent.parent.name}_{p.stem}.tex"
        doc.write_text(
            "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
            + p.read_text()
            + "\\end{document}\n"
        )
        res = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if res.returncode != 0:
            failed.append(
                f"{p.relative_to(ROOT)}: " + " | ".join(ln for ln in res.stdout.splitlines() if ln.startswith("!"))
            )
    assert not failed, failed


def test_an_average_is_never_over_fewer_items_than_the_others():
    """A method that lacks items has no average (never one over a smaller set beside the paper's)."""
    items = [f"kodim0{i}" for i in range(1, 9)]
    rows = [dict(r, method="vanilla") for r in _rows(items, value=30.0)] + _rows(items[1:7], value=35.0)
    t = build_table(TABLES["table6_image_psnr"], with_averages(rows)).set_index(["method", "item"])
    assert t.loc[("vanilla", "average"), "value"] == 30.0 and t.loc[("vanilla", "average"), "paper_value"] != ""
    iga = t.loc[("IGA", "average")]
    assert iga.value == "" and iga.paper_value == ""
    assert iga.note == "missing for 2/8 items: not run (kodim01, kodim08)"


def test_a_metric_absent_from_a_cells_metrics_is_a_missing_row():
    from iga.report.tables import metric_rows

    rows = metric_rows("t", "image", "kodak", "kodim01", "PE", "IGA", {"psnr": 30.0}, "", ["psnr", "ssim"])
    assert [(r["metric"], r["value"], r["note"]) for r in rows] == [
        ("psnr", 30.0, ""),
        ("ssim", "", "missing: not recorded"),
    ]


def test_an_average_over_items_with_different_seeds_keeps_the_reason_a_value_is_missing():
    rows = []
    for item, seeds in (("kodim01", [1]), ("kodim02", [1]), ("kodim03", [1, 2, 3])):
        for seed in seeds:
            rows += [dict(r, seed=seed, value="", note=LPIPS_OFFLINE) for r in _rows([item], metric="lpips")]
    avg = with_averages(rows)
    avg = avg[avg.item == "average"]
    assert len(avg) == 1 and avg.value.iloc[0] == ""
    assert avg.note.iloc[0] == "missing for 3/3 items: " + reason(LPIPS_OFFLINE).removeprefix("missing: ")
