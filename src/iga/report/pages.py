"""Standalone HTML pages for Snakemake's ``--report``: a table, a Markdown note or a figure, each with
its caption visible on the page.

Snakemake shows an HTML result inline (in a frame) but offers every other file only as a download, and
shows a PNG without its caption, centred so that a tall figure loses its top. So every Markdown result
(the paper tables, written by :func:`iga.report.render.markdown`; ``FINDINGS.md``) and every figure is
also wrapped into one small self-contained page: nothing is fetched, the figure is embedded.
"""

from __future__ import annotations

import base64
import html as _html
from pathlib import Path

# Small, readable, and a figure always fits the frame's width and height (the frame is one screen tall).
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:14px;line-height:1.45;color:#1f2933;
margin:0;padding:16px 20px;max-width:1100px}
h1{font-size:20px;margin:0 0 8px}h2{font-size:17px;margin:20px 0 6px}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:13px}
caption{caption-side:top;text-align:left;font-weight:600;padding:4px 0}
th,td{border:1px solid #cbd2d9;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f0f4f8}td:first-child,th:first-child{text-align:left}
code{background:#f0f4f8;padding:0 3px;border-radius:3px}
figure{margin:0}
figure img{display:block;max-width:100%;max-height:calc(100vh - 120px);height:auto;width:auto;cursor:zoom-in}
figure img.full{max-height:none;cursor:zoom-out}
figcaption,.caption{margin:8px 0;color:#323f4b}.scale{color:#7b8794;font-size:12px}
"""


def page(title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{_html.escape(title)}</title>'
        f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def rst_html(text: str) -> str:
    """A caption file (reStructuredText, as Snakemake's report captions are) → an HTML fragment."""
    if not text.strip():
        return ""
    import warnings

    from docutils.core import publish_parts  # a dependency of snakemake

    with (
        warnings.catch_warnings()
    ):  # docutils 0.22 renames writer_name; snakemake allows >=0.20, which lacks the new name
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return publish_parts(text, writer_name="html5", settings_overrides={"report_level": 5})["body"]


def markdown_html(text: str) -> str:
    """Markdown (pipe tables, lists, emphasis, code) → an HTML fragment.

    markdown-it-py (CommonMark) comes with the environment's `rich`; were it absent, the page shows the
    Markdown source as it is, which is still readable."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return f"<pre>{_html.escape(text)}</pre>"
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def markdown_page(md_path: Path, caption_rst: str = "") -> str:
    """A Markdown result (a table with its title, scale and notes, or FINDINGS.md) as a page."""
    text = Path(md_path).read_text()
    title = next((ln.lstrip("# ").strip() for ln in text.splitlines() if ln.startswith("#")), Path(md_path).stem)
    caption = rst_html(caption_rst)
    return page(title, markdown_html(text) + (f'\n<div class="caption">{caption}</div>' if caption else ""))


def figure_page(png_path: Path, caption_rst: str = "", title: str = "") -> str:
    """A figure, embedded, with its caption under it; it is scaled down to fit, never cropped."""
    png_path = Path(png_path)
    if png_path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".svg"):
        raise ValueError(f"figure {png_path}: not an image; allowed: .png, .jpg, .jpeg, .svg")
    mime = {"jpg": "jpeg", "svg": "svg+xml"}.get(png_path.suffix[1:].lower(), png_path.suffix[1:].lower())
    data = base64.b64encode(png_path.read_bytes()).decode()
    title = title or png_path.stem
    caption = rst_html(caption_rst)
    return page(
        title,
        f'<h1>{_html.escape(title)}</h1>\n<figure><img alt="{_html.escape(title)}" '
        f'onclick="this.classList.toggle(\'full\')" src="data:image/{mime};base64,{data}">\n'
        f'<figcaption>{caption}<p class="scale">Click the figure for full size.</p></figcaption></figure>',
    )
