# The readable `snakemake --report` (README › Report): a landing page (../report/workflow.rst) that says
# what this is, the preset's scale, and links every table and figure; each table and figure shown inline.
#
# Snakemake shows HTML results inline but offers other files only as downloads, and shows a PNG without
# its caption, centred so that a tall one loses its top. So each task's rules keep marking their outputs
# with report(...) as usual, and this file (included after them) turns every marked table (NAME.md) and
# figure (PNG) among the final outputs into a small standalone HTML page (`iga report-page`) marked with the same
# category, subcategory and caption; the page replaces the file in the report. A table's .csv and .tex
# stay as downloads. results/{preset}/FINDINGS.md (rule findings, below), where present, is shown too.
import os as _os
import re as _re

from iga.report.claims import CLAIM_TABLES  # the tables the claims are read from
from iga.report.labels import TASK_ORDER


report: "../report/workflow.rst"


def training_records():
    """Every training cell's record (metrics.json) of the enabled tasks, each once: the cost table's input."""
    files = []
    for task in TASK_ORDER:
        if not enabled(task):
            continue
        if task == "image_ablation":
            files += ABL_METRICS  # its own records, or the reused image cells' (ablation.smk)
            continue
        for group in [None] + sorted(getattr(CONFIG.tasks, task).grids):
            files += cell_outputs(task, "metrics.json", group)
    return list(dict.fromkeys(files))


onstart:
    # records of cells this config does not have (a dropped item, a disabled task) are read by nothing: say so
    from iga.cell_records import orphan_records

    _orphans = orphan_records(RECORDS, training_records())
    if _orphans:
        shown = "\n  ".join(_orphans[:8]) + (f"\n  … and {len(_orphans) - 8} more" if len(_orphans) > 8 else "")
        print(
            f"NOTE: {len(_orphans)} cell record(s) under {RECORDS} belong to no cell of this config, so no table, "
            f"figure or cost row reads them; remove them if they are no longer wanted (git rm -r FOLDER):\n  {shown}",
            file=sys.stderr,
        )


def reported_outputs():
    """The final outputs of the enabled tasks: every rule output marked report() (tables, figures, the
    cost table), read off the rules themselves rather than collected in a list by each rule file."""
    return [str(f) for r in workflow.rules for f in r.output if "report" in f.flags and not r.has_wildcards()]


# The cost of every trained cell, across tasks (iga.report.cost reads only the cells' result records).
if any(enabled(t) for t in config.get("tasks", {})):

    rule cost_table:
        input:
            records=training_records(),
            config=config_stamp(
                "cost_table", *(t for t in config.get("tasks", {}) if enabled(t)), reads=("preset_note",)
            ),
        output:
            csv=report(f"{RESULTS}/tables/cost.csv", category="Compute cost", caption="../report/cost.rst"),
            md=report(f"{RESULTS}/tables/cost.md", category="Compute cost", caption="../report/cost.rst"),
            figure=report(
                f"{RESULTS}/figures/cost_overview.png", category="Compute cost", caption="../report/cost_figure.rst"
            ),
            built_from=built_from("cost_table"),
        log:
            f"{LOGS}/report/cost_table.log",
        params:
            datasets=" ".join(
                f"--dataset {shlex.quote(pair)}"
                for pair in (f"{t}={getattr(CONFIG.tasks, t).dataset}" for t in sorted(config["tasks"]) if enabled(t))
            ),
            note=f"preset {PRESET}; each task at the scale stated in its own tables (main: {SCALE_NOTE})",
        shell:
            "iga cost-table {params.datasets} --out-csv {output.csv} --out-md {output.md}"
            " --figure {output.figure} --scale-note {params.note:q} {input.records} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"


# Is IGA the best method, here and in the paper: every average and per-item cell of Tables 1/6, 2/9, 3/10,
# read from the tables' own CSVs (iga.report.claims); FINDINGS cites it instead of copying numbers.
_CLAIM_TABLES = [
    f
    for f in reported_outputs()
    if Path(f).parent.name == "tables"
    and f.endswith(".csv")
    and Path(f).name.split("_")[0] in {f"table{t}" for t in CLAIM_TABLES}
]
if _CLAIM_TABLES:

    rule claims_table:
        input:
            tables=_CLAIM_TABLES,
            # which tasks feed it: disabling one rebuilds the claims without its rows
            config=config_stamp("claims_table", *(t for t in ("image", "occupancy", "nerf") if enabled(t))),
        output:
            csv=report(f"{RESULTS}/tables/claims.csv", category="Claims", caption="../report/claims.rst"),
            md=report(f"{RESULTS}/tables/claims.md", category="Claims", caption="../report/claims.rst"),
            built_from=built_from("claims_table"),
        log:
            f"{LOGS}/report/claims.log",
        shell:
            "iga claims --out-csv {output.csv} --out-md {output.md} {input.tables} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"


REPORT_PAGES = f"{RESULTS}/report"
FINAL_OUTPUTS = reported_outputs()  # before _page_entries() moves the flags of tables and figures to pages


def _caption_path(report_obj):
    """The caption file of a report() flag (Snakemake stores it resolved), or None."""
    cap = report_obj.caption
    if cap is None:
        return None
    return _os.path.relpath(str(cap.get_path_or_uri(secret_free=True) if hasattr(cap, "get_path_or_uri") else cap))


def _page_entries():
    """{(kind, name): (source file, report flag)} of every marked table (.md) and figure among the final
    outputs; each flag is read and moved off the rule's own output file."""
    wanted = set(FINAL_OUTPUTS)
    outputs = {str(f): f for r in workflow.rules for f in r.output if str(f) in wanted}
    entries = {}
    for path, f in outputs.items():
        flag = f.flags.get("report")
        if flag is None:
            continue
        if path.endswith(".md") and "/tables/" in path:
            kind = "tables"
        elif path.endswith((".png", ".jpg", ".svg")):
            kind = "figures"
        else:
            continue  # .csv, .tex and the like stay downloads
        entries[(kind, Path(path).stem)] = (path, flag)
        del f.flags["report"]  # its page shows it (a figure: with the caption visible)
    return entries


REPORT_ENTRIES = _page_entries()
_FINDINGS = f"{RESULTS}/FINDINGS.md"


def _caption_input(kind):
    def get(wildcards):
        cap = _caption_path(REPORT_ENTRIES[(kind, wildcards.name)][1])
        return [cap] if cap else []

    return get


for _kind, _src_key, _flag in (("tables", "markdown", "--markdown"), ("figures", "figure", "--figure")):
    _names = sorted(n for k, n in REPORT_ENTRIES if k == _kind)
    if not _names:
        continue

    rule:
        name:
            f"report_page_{_kind}"
        input:
            src=lambda wc, k=_kind: REPORT_ENTRIES[(k, wc.name)][0],
            caption=lambda wc, k=_kind: _caption_input(k)(wc),
        output:
            report(
                f"{REPORT_PAGES}/{_kind}/{{name}}.html",
                category=lambda wc, k=_kind: REPORT_ENTRIES[(k, wc.name)][1].category,
                subcategory=lambda wc, k=_kind: REPORT_ENTRIES[(k, wc.name)][1].subcategory,
            ),
        log:
            f"{LOGS}/report/page_{_kind}_{{name}}.log",
        wildcard_constraints:
            name="|".join(_re.escape(n) for n in _names),
        params:
            flag=_flag,
            caption=lambda wc, input: f"--caption {shlex.quote(input.caption[0])}" if input.caption else "",
        shell:
            "iga report-page {params.flag} {input.src:q} {params.caption} --out {output:q} > {log} 2>&1"


# FINDINGS.md: the preset's analysis, written once as a template whose numbers are all read from the
# results (iga.report.findings), so a rerun cannot leave a stale number in it.
_FINDINGS_TEMPLATE = f"workflow/report/findings/{PRESET}.md.j2"
_HAS_FINDINGS = _os.path.exists(_FINDINGS_TEMPLATE) or _os.path.exists(_FINDINGS)
if _os.path.exists(_FINDINGS_TEMPLATE):

    rule findings:
        input:
            template=_FINDINGS_TEMPLATE,
            tables=[f for f in FINAL_OUTPUTS if Path(f).parent.name == "tables" and f.endswith(".csv")],
            records=training_records(),
            config=config_stamp("findings", *(t for t in config.get("tasks", {}) if enabled(t))),
        output:
            md=_FINDINGS,
            built_from=built_from("findings"),
        log:
            f"{LOGS}/report/findings.log",
        shell:
            "iga findings --template {input.template:q} --out {output.md:q} --tables {input.tables:q} --records {input.records:q} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"


if _HAS_FINDINGS:

    rule report_page_findings:
        input:
            _FINDINGS,
        output:
            report(f"{REPORT_PAGES}/FINDINGS.html", category="Findings"),
        log:
            f"{LOGS}/report/page_findings.log",
        shell:
            "iga report-page --markdown {input:q} --out {output:q} > {log} 2>&1"


# A stamped rule keeps the config its outputs were built from in the same job (common.smk, config_stamp):
# checked here, once every rule is defined, so that a new rule cannot take the stamp and forget the copy.
for _r in workflow.rules:
    if CONFIG_STAMPS.get(_r.name) in map(str, _r.input):
        _kept = dict(_r.output.items()).get("built_from")
        assert str(_kept) == built_from(_r.name) and KEEP_BUILT_FROM in (_r.shellcmd or ""), (
            f"rule {_r.name} reads its config stamp: it must declare built_from=built_from({_r.name!r}) and end "
            "its shell with KEEP_BUILT_FROM"
        )


def all_targets():
    """rule all: the final outputs, with each table and figure's report page and the findings page."""
    pages = [f"{REPORT_PAGES}/{kind}/{name}.html" for kind, name in sorted(REPORT_ENTRIES)]
    findings = [f"{REPORT_PAGES}/FINDINGS.html"] if _HAS_FINDINGS else []
    return FINAL_OUTPUTS + pages + findings
