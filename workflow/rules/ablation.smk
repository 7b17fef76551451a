# Appendix B (paper Tables 4 and 5) and IGA as the paper text describes it vs as the official code does
# it, as a task of its own: image cells under {WORK}/image_ablation/, trained by `iga train-image` (the
# same trainer as Tables 1/6), so they never collide with the main image cells. Named sub-grids
# (tasks.image_ablation.grids: table4, table5, variants) share cells: a cell in two grids trains once.
# A cell identical to a main image cell (same image, same resolved settings) is not trained again: the
# tables read the image cell (tasks.image_ablation.reuse_image_cells, default true; see reused_image_cell).
# LPIPS is not computed for these cells (--no-lpips): no ablation table reports it.
#
# ABL_METRICS: the record each ablation cell is read from (its own, or a reused image cell's); the
# cost table (report.smk) reads the same list.
import json as _json
import sys as _sys

from iga.cells import settings_diff

if enabled("image_ablation"):
    ABL_SEC = CONFIG.tasks.image_ablation  # validated; defaults declared there (iga.tasks.image_config)
    ABL_GRIDS = ABL_SEC.TABLE_GRIDS  # all required
    ABL_NOTE = ABL_SEC.scale_note or SCALE_NOTE
    # a table whose grid has no cells (e.g. the mini preset's table5/variants) is not written at all,
    # rather than as an empty table that could be mistaken for a result
    ABL_TABLES = [
        t
        for t in ("table4_sampling", "table5_group_size", "variants_paper_vs_code")
        if enumerate_cells(config, "image_ablation", t.split("_")[0])
    ]

    def ablation_cells():
        """The cells of all grids, each once, in grid order."""
        cells = []
        for grid in ABL_GRIDS:
            for c in enumerate_cells(config, "image_ablation", grid):
                if c not in cells:
                    cells.append(c)
        return cells

    _IMAGE_CELLS = set(enumerate_cells(config, "image")) if enabled("image") else set()

    def reused_image_cell(cell):
        """The main image cell's metrics.json when it is the very run `cell` would train, else None.

        Tables 4/5 use "the same settings as Experiment 6.1", so their vanilla and IGA cells usually are
        main image cells; training them twice costs hours. Reused only when the image task is enabled and
        lists the cell, both read the same input file (dataset, embedded size), the resolved settings are
        equal (they hold no task name: the task only names the cell's folder and provenance) and both jobs
        see a GPU or neither (train.device: auto picks it). The image cell also computes LPIPS: a superset.
        """
        if not ABL_SEC.reuse_image_cells or not enabled("image"):
            return None
        twin = Cell("image", cell.item, cell.arch, cell.method, cell.seed)
        if twin not in _IMAGE_CELLS or image_path("image", cell.item) != image_path("image_ablation", cell.item):
            return None
        settings = resolved(cell)
        if settings != resolved(twin):
            return None
        gpu = [job_resources(r)["gpu"] > 0 for r in ("train_image", "train_image_ablation")]
        if settings["train"].get("device", "auto") != "cpu" and gpu[0] != gpu[1]:
            return None
        return f"{record_dir('image', twin)}/metrics.json"

    def image_twin_diff(cell):
        """How `cell`'s settings differ from the image cell of the same name on the same picture (Tables 4/5
        say "the same settings as Experiment 6.1": a difference is worth saying), else []."""
        twin = Cell("image", cell.item, cell.arch, cell.method, cell.seed)
        if twin not in _IMAGE_CELLS or image_path("image", cell.item) != image_path("image_ablation", cell.item):
            return []
        return settings_diff(resolved(cell), resolved(twin))

    ABL_METRICS, _abl_reused, _abl_differ = [], [], []
    for _c in ablation_cells():
        _twin = reused_image_cell(_c)
        ABL_METRICS.append(_twin or f"{record_dir('image_ablation', _c)}/metrics.json")
        if _twin:
            _abl_reused.append(_c)
        elif _diff := image_twin_diff(_c):
            _abl_differ.append((_c, _diff))
    if _abl_differ:
        _c, _diff = _abl_differ[0]
        print(
            f"image_ablation: warning: {len(_abl_differ)} cells differ from the image cells of the same name "
            f"(e.g. {_c.item}/{_c.name}: {'; '.join(_diff[:3])} [ablation ≠ image]), so Tables 4/5 do not use "
            "Table 1's settings for them; if that is not intended, give tasks.image_ablation.overrides the same "
            "change",
            file=_sys.stderr,
        )
    if _abl_reused:
        print(
            f"image_ablation: {len(_abl_reused)} of {len(ABL_METRICS)} cells reuse identical image cells "
            f"({', '.join(sorted({c.method for c in _abl_reused}))}; {RECORDS}/image/) instead of training again "
            "(set tasks.image_ablation.reuse_image_cells: false to train them separately)",
            file=_sys.stderr,
        )

    rule train_image_ablation:
        input:
            unpack(train_inputs("image_ablation", lambda wc: {"image": image_path("image_ablation", wc.item)})),
        output:
            **record_outputs("image_ablation"),
            log=f"{RECORDS}/image_ablation/{{item}}/{{arch}}-{{method}}/s{{seed}}/train_log.jsonl",
        log:
            f"{LOGS}/image_ablation/{{item}}/{{arch}}-{{method}}/s{{seed}}.log",
        benchmark:
            f"{WORK}/benchmarks/image_ablation/{{item}}/{{arch}}-{{method}}/s{{seed}}.tsv"
        threads: job_threads("train_image_ablation")
        resources:
            **job_resources("train_image_ablation"),
        params:
            settings=cell_settings("image_ablation"),
            outdir=lambda wc: f"{WORK}/image_ablation/{wc.item}/{wc.arch}-{wc.method}/s{wc.seed}",
            image=lambda wc: image_path("image_ablation", wc.item),
            code_version=RESULTS_VERSION,
            keep=keep_record("image_ablation"),
        shell:
            "(iga gpu-slot --gpus {resources.gpu} --label {log} -- iga train-image --settings {params.settings:q}"
            " --image {params.image} --no-lpips 'not computed for ablation cells (no ablation table reports LPIPS)'"
            " --out {params.outdir} --cell image_ablation/{wildcards.item}/{wildcards.arch}-{wildcards.method}/s{wildcards.seed}"
            " --threads {threads} && {params.keep}) > {log} 2>&1"

    rule collect_image_ablation:
        input:
            metrics=ABL_METRICS,
            config=config_stamp("collect_image_ablation", "image_ablation", "image"),
        output:
            long=f"{RESULTS}/metrics/image_ablation_long.csv",
            built_from=built_from("collect_image_ablation"),
        log:
            f"{LOGS}/report/collect_image_ablation.log",
        params:
            preset=PRESET,
            dataset=ABL_SEC.dataset,
        shell:
            "iga ablation-collect --preset {params.preset} --dataset {params.dataset:q}"
            " --out {output.long} {input.metrics} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

    rule tables_image_ablation:
        input:
            long=rules.collect_image_ablation.output.long,
            config=config_stamp("tables_image_ablation", "image_ablation", "image", reads=("note",)),
        output:
            [
                report(
                    f"{RESULTS}/tables/{t}.{ext}",
                    category="Ablations (appendix B)",
                    subcategory=t,
                    caption=f"../report/ablation_{t.split('_')[0]}.rst",
                )
                for t in ABL_TABLES
                for ext in ("csv", "md", "tex")  # md: shown as a page (report.smk); csv, tex: downloads
            ],
            built_from=built_from("tables_image_ablation"),
        log:
            f"{LOGS}/report/tables_image_ablation.log",
        params:
            outdir=lambda wc, output: Path(output[0]).parent,
            grids=_json.dumps(
                {
                    "items": ABL_SEC.items,
                    "architectures": ABL_SEC.architectures,
                    "grids": {g: ABL_SEC.grids[g].model_dump(exclude_none=True) for g in ABL_GRIDS},
                },
                sort_keys=True,
            ),
            dataset=ABL_SEC.dataset,
            tables=",".join(ABL_TABLES),
            note=ABL_NOTE,
        shell:
            "iga ablation-tables --long {input.long} --grids {params.grids:q} --dataset {params.dataset:q}"
            " --tables {params.tables} --out-dir {params.outdir} --scale-note {params.note:q} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"
