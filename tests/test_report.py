"""The readable report: pages (iga.report.pages) and a real `snakemake --report` of the tiny preset.

The report is parsed, not screenshotted: the landing text must link Table 1 to a view that shows it inline
(an HTML result, which Snakemake shows in a frame; any other type is only a download), that page must hold
the table as an HTML <table> with its scale, figures must be pages with their caption, .tex/.csv downloads.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from html.parser import HTMLParser

import pytest
from snakemake_runner import TINY, copy_workflow, snakemake_cmd

from iga.report import render
from iga.report.pages import figure_page, markdown_page


class Parsed(HTMLParser):
    """Tags, table cells and text of an HTML document."""

    def __init__(self, text: str):
        super().__init__()
        self.tags, self.cells, self.text, self._cell = [], [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.cells.append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell += data

    def has(self, tag):
        return any(t == tag for t, _ in self.tags)

    @property
    def all_text(self):
        return " ".join(" ".join(self.text).split())


def _layout():
    return render.Layout(
        "Table X: a title",
        "TEST scale 16x16",
        ["Method", "PSNR ↑"],
        [["PE", render.Entry("21.50", True, "30.46")], ["PE+IGA", "—"]],
        notes=["missing: AlexNet weights not available offline"],
    )


def test_markdown_table_page_is_an_html_table_with_title_scale_and_notes(tmp_path):
    md = tmp_path / "t.md"
    md.write_text(render.markdown(_layout()))
    doc = Parsed(markdown_page(md, "A caption with ``code``."))
    assert doc.has("table")
    assert doc.cells[:2] == ["Method", "PSNR ↑"] and "21.50 (30.46)" in doc.cells and "—" in doc.cells
    text = doc.all_text
    for part in (
        "Table X: a title",
        "TEST scale 16x16",
        "AlexNet weights not available offline",
        "A caption with code",
    ):
        assert part in text
    assert any(t == "title" for t, _ in doc.tags)


def test_figure_page_embeds_the_image_and_shows_the_caption(tmp_path):
    png = tmp_path / "fig.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\nnot-really")
    doc = Parsed(figure_page(png, "Paper Figure 4: *crops*."))
    img = [a for t, a in doc.tags if t == "img"]
    assert len(img) == 1 and base64.b64decode(img[0]["src"].split(",", 1)[1]) == png.read_bytes()
    assert "Paper Figure 4:" in doc.all_text and any(t == "em" for t, _ in doc.tags)  # rst rendered
    with pytest.raises(ValueError, match=r"not an image; allowed"):
        figure_page(tmp_path / "fig.csv")


# --- the generated report ----------------------------------------------------------------------
def _js_var(html: str, name: str):
    m = re.search(rf'<script id="{name}">\s*var \w+ = (.*?);\s*</script>', html, re.DOTALL)
    assert m, f"no {name} in the report"
    return json.loads(m.group(1))


def _data(uri: str) -> str:
    return base64.b64decode(uri.split("base64,", 1)[1]).decode()


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    wf = copy_workflow(tmp_path_factory.mktemp("report") / "wf")
    for extra in ([], ["--report", "results/tiny/report.html"]):
        cmd = snakemake_cmd("--configfile", str(TINY), *extra)
        r = subprocess.run(cmd, cwd=wf, capture_output=True, text=True, timeout=500, check=False)
        assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    return (wf / "results/tiny/report.html").read_text(), r.stdout + r.stderr


@pytest.mark.timeout(600)
def test_report_shows_table1_inline_from_the_landing_page(tiny_report):
    html, _ = tiny_report
    results, desc = _js_var(html, "results"), _js_var(html, "workflow-desc")
    page = "results/tiny/report/tables/table1_image_average.html"
    assert results[page]["mime_type"] == "text/html"  # shown in a frame, not downloaded
    # the landing text: what this is, the scale, and one click to the table's inline view
    text = Parsed(desc).all_text
    assert "iga-repro" in text and "TINY test scale" in text
    links = [a for t, a in Parsed(desc).tags if t == "a" and page in a.get("onclick", "")]
    assert links and "content: 'html'" in links[0]["onclick"]
    table = Parsed(_data(results[page]["data_uri"]))
    assert table.has("table") and table.cells[0] == "Method" and "PE+IGA" in table.cells
    assert "TINY test scale" in table.all_text


@pytest.mark.timeout(600)
def test_report_figures_are_pages_with_captions_and_tables_download(tiny_report):
    html, _ = tiny_report
    results = _js_var(html, "results")
    assert not [p for p in results if p.endswith(".png")]  # every figure is shown by its page
    fig = Parsed(_data(results["results/tiny/report/figures/fig4_image_crops.html"]["data_uri"]))
    assert fig.has("img") and "Paper Figure 4" in fig.all_text
    for ext in ("csv", "tex"):
        assert f"results/tiny/tables/table1_image_average.{ext}" in results
    assert "iga-repro report" in html  # workflow/report/style.css, through profiles/default
