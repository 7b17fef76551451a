"""Caveats of uncertain recipes come from a cell's resolved settings and reach every table format."""

import json
from pathlib import Path

import yaml

from iga.cells import Cell, deep_merge, resolve_settings
from iga.report import render
from iga.report.caveats import NERF_BN, cell_caveat
from iga.report.tables import TABLES, build_table, collect, layout, with_averages

ROOT = Path(__file__).resolve().parents[1]


def _settings(task, arch, method, over=None):
    cfg = yaml.safe_load(open(ROOT / "config.yaml"))
    return deep_merge(resolve_settings(cfg, Cell(task, "kodim01", arch, method, 4096)), over or {})


def _rows(arch, method, caveat, items=("kodim01", "kodim02")):
    return [
        {"preset": "t", "task": "image", "dataset": "kodak", "item": i, "metric": "psnr", "architecture": arch,
         "method": method, "value": 30.0, "note": "", "cell": "", "caveat": caveat}
        for i in items
    ]  # fmt: skip


def test_siren_bn_gets_the_layout_note_in_md_tex_html_and_csv(tmp_path):
    note = cell_caveat("image", "SIREN", "BN", _settings("image", "SIREN", "BN"))
    assert note and "sin+bn" in note and "not published" in note
    spec = TABLES["table6_image_psnr"]
    t = build_table(spec, with_averages(_rows("SIREN", "BN", note) + _rows("PE", "vanilla", "")))
    assert set(t[t.method == "BN"].caveat) == {note} and set(t[t.method == "vanilla"].caveat) == {""}
    lay = layout(spec, t, "S")
    md, tex, html = render.markdown(lay), render.latex(lay), render.html(lay)
    assert "| SIREN+BN [1] |" in md and f"- [1] {note}" in md
    assert "SIREN+BN [1]" in tex and "not published" in tex
    assert "not published" in html and "SIREN+BN [1]" in html
    assert "| PE |" in md  # a cell without caveat has no mark


def test_changing_the_fr_alpha_changes_the_note():
    official = cell_caveat("image", "SIREN", "FR", _settings("image", "SIREN", "FR"))
    other = cell_caveat("image", "SIREN", "FR", _settings("image", "SIREN", "FR", {"model": {"fr": {"alpha": 0.02}}}))
    assert "0.004" in official and "kodim08" in official
    assert "0.02" in other and "kodim08" not in other and other != official


def test_cells_without_caveat_get_none():
    for arch, method in (("PE", "BN"), ("ReLU", "FR"), ("SIREN", "vanilla"), ("SIREN", "IGA"), ("PE", "IGA")):
        assert cell_caveat("image", arch, method, _settings("image", arch, method)) is None, (arch, method)


def test_collect_reads_the_caveat_from_the_cells_provenance(tmp_path):
    cells = []
    for arch in ("SIREN", "PE"):
        d = tmp_path / f"image/kodim01/{arch}-BN"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"psnr": 30.0}))
        (d / "provenance.json").write_text(json.dumps({"settings": _settings("image", arch, "BN")}))
        cells.append({"task": "image", "dataset": "kodak", "item": "kodim01", "arch": arch, "method": "BN",
                      "path": str(d / "metrics.json")})  # fmt: skip
    rows = {r["architecture"]: r["caveat"] for r in collect(cells, "t", ["psnr"])}
    assert "sin+bn" in rows["SIREN"] and rows["PE"] == ""


def test_nerf_tables_say_bn_is_quoted_not_run():
    rows = [
        {"preset": "t", "task": "nerf", "dataset": "blender", "item": "lego", "metric": "psnr",
         "architecture": "NeRF", "method": m, "value": 30.0, "note": "", "cell": "", "caveat": ""}
        for m in ("vanilla", "FR", "IGA")
    ]  # fmt: skip
    spec = TABLES["table10_nerf_per_scene"]
    md = render.markdown(layout(spec, build_table(spec, with_averages(rows)), "S"))
    assert NERF_BN in md and "Cai" in md
