"""The one renderer: a laid-out table → Markdown, LaTeX (booktabs) or an HTML fragment.

Builders decide what is in a table (:class:`Layout`); this module only decides how it looks, so
the three formats can never disagree about a value.
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

TEX_HEADER = "% needs \\usepackage{booktabs} (\\toprule, \\midrule, \\bottomrule)\n"
_TEX_CHARS = {
    "\\": r"\textbackslash{}",
    "_": r"\_",
    "%": r"\%",
    "&": r"\&",
    "#": r"\#",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "×": r"$\times$",
    "Δ": r"$\Delta$",
    "λ": r"$\lambda$",
    "α": r"$\alpha$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "—": "---",
    "–": "--",
    "−": "$-$",
    "‖": r"$\|$",
    "·": r"$\cdot$",
    "›": r"$>$",
    "π": r"$\pi$",
    "²": r"$^2$",
    "³": r"$^3$",
    "≤": r"$\le$",
    "≥": r"$\ge$",
    "±": r"$\pm$",
    "†": r"$^\dagger$",
}
_POWER = re.compile(r"(\d+)\^(\d+)")  # "128^3" → $128^{3}$, as a reader means it


def tex_escape(text) -> str:
    """Plain text (titles, scale notes, labels) → LaTeX that pdflatex compiles."""
    parts = []
    for i, chunk in enumerate(_POWER.split(str(text))):
        if i % 3 == 0:
            parts.append("".join(_TEX_CHARS.get(ch, ch) for ch in chunk))
        elif i % 3 == 1:
            parts.append(f"${chunk}^{{")
        else:
            parts.append(f"{chunk}}}$")
    return "".join(parts)


@dataclass
class Entry:
    """One table cell: our value, bold when best, and an aside such as the paper's value."""

    text: str
    bold: bool = False
    aside: str = ""


@dataclass
class Layout:
    title: str
    scale: str
    header: list[str]
    rows: list[list[object]]  # str or Entry per column
    groups: list[str] = field(default_factory=list)  # a rule between rows whose group differs
    intro: str = ""  # Markdown/HTML only: how to read the table
    caption: str = ""  # LaTeX caption after the title
    notes: list[str] = field(default_factory=list)
    extras: list[Layout] = field(default_factory=list)  # Markdown/HTML only: per-item detail tables


def _cell(e, esc, bold, aside) -> str:
    if not isinstance(e, Entry):
        return esc(str(e))
    return (bold(esc(e.text)) if e.bold else esc(e.text)) + (aside(esc(e.aside)) if e.aside else "")


def _md_table(t: Layout) -> list[str]:
    lines = ["| " + " | ".join(t.header) + " |", "|---" * len(t.header) + "|"]
    for row in t.rows:
        lines.append("| " + " | ".join(_cell(e, str, lambda s: f"**{s}**", lambda s: f" ({s})") for e in row) + " |")
    return lines


def markdown(t: Layout) -> str:
    lines = [f"# {t.title}", "", f"**Scale:** {t.scale}", ""] + ([t.intro, ""] if t.intro else []) + _md_table(t)
    for x in t.extras:
        lines += ["", x.title, ""] + _md_table(x)
    if t.notes:
        lines += ["", "Notes:"] + [f"- {n}" for n in t.notes]
    return "\n".join(lines) + "\n"


def latex(t: Layout) -> str:
    cap = ". ".join(s for s in (t.title, t.caption, t.scale) if s)
    lines = [
        TEX_HEADER + r"\begin{table}[t]",
        r"\centering",
        r"\small",
        rf"\caption{{{tex_escape(cap)}}}",
        r"\begin{tabular}{l" + "c" * (len(t.header) - 1) + "}",
        r"\toprule",
        " & ".join(tex_escape(h) for h in t.header) + r" \\",
        r"\midrule",
    ]
    for i, row in enumerate(t.rows):
        if i and t.groups and t.groups[i] != t.groups[i - 1]:
            lines.append(r"\midrule")
        lines.append(
            " & ".join(
                _cell(e, tex_escape, lambda s: rf"\textbf{{{s}}}", lambda s: rf" \scriptsize{{({s})}}") for e in row
            )
            + r" \\"
        )
    lines += [r"\bottomrule", r"\end{tabular}"]
    if t.notes:  # the same notes as Markdown/HTML (caveats, missing values); \par, as "\\[1]" reads as a length
        lines += [r"\par\footnotesize"] + [tex_escape(n) + r"\par" for n in t.notes]
    lines += [r"\end{table}"]
    return "\n".join(lines) + "\n"


def _html_table(t: Layout, caption: str) -> str:
    esc = _html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in t.header)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_cell(e, esc, lambda s: f'<b>{s}</b>', lambda s: f' <small>({s})</small>')}</td>" for e in row)
        + "</tr>"
        for row in t.rows
    )
    return f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def html(t: Layout) -> str:
    """An HTML fragment (no <html>/<body>): caption with the scale, the table, the notes."""
    esc = _html.escape
    parts = [_html_table(t, f"{t.title} [{t.scale}]")] + ([f"<p>{esc(t.intro)}</p>"] if t.intro else [])
    parts += [_html_table(x, x.title) for x in t.extras]
    if t.notes:
        parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in t.notes) + "</ul>")
    return "\n".join(parts) + "\n"


def write(t: Layout, out_dir: Path, name: str, formats: Sequence[str] = ("md", "tex")) -> list[Path]:
    out = []
    for ext, render in (("md", markdown), ("tex", latex), ("html", html)):
        if ext in formats:
            p = Path(out_dir) / f"{name}.{ext}"
            p.write_text(render(t))
            out.append(p)
    return out
