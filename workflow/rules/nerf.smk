# NeRF on Blender through the nerfstudio plugin (paper section 6.3, appendix F): Tables 3, 10, Figure 12.
from iga.commands.data import MIRROR_ENV
from iga.data.scene_folder import nerf_scene_source
from iga.nerf.cell_settings import BLENDER_SCENES

if enabled("nerf"):
    NERF_SEC = CONFIG.tasks.nerf  # the validated section: its defaults are declared once, in the model
    NERF_TABLES = ["table3_nerf_average", "table10_nerf_per_scene"]
    LPIPS_ON_NERF = CONFIG.lpips.enabled
    NERF_NOTE = NERF_SEC.scale_note or SCALE_NOTE
    # the mirror as `iga download` sees it (config first, then the environment)
    NERF_MIRROR = config["data"].get("mirror") or os.environ.get(MIRROR_ENV)

    TRAIN_ONLY = NERF_SEC.train_only_scenes

    def nerf_scene_dir(item):
        if NERF_SEC.dataset == "blender":
            # a train-split-only preset: the scene's train split alone, the same files whether the mirror's
            # scene folder or the zip supplied it (rule fetch_nerf_scene), so its cells do not depend on the
            # machine's copy; otherwise the zip's scenes with their real test split
            return f"{DATA}/nerf_synthetic_scenes/{item}" if TRAIN_ONLY else f"{DATA}/nerf_synthetic/{item}"
        e = NERF_SEC.embedded_scene
        return f"{DATA}/embedded/nerf/{item}_{e.size}px_{e.n_train}v"

    rule download_nerf_synthetic:
        output:
            f"{DATA}/downloads/nerf_synthetic.zip",
        log:
            "logs/data/nerf_synthetic_download.log",
        params:
            mirror=MIRROR_FLAG,
        shell:
            "iga download --dataset nerf_synthetic --item nerf_synthetic --out {output} {params.mirror}"
            " {DOWNLOAD_FLAGS} > {log} 2>&1"

    rule extract_nerf_synthetic:
        input:
            rules.download_nerf_synthetic.output,
        output:
            [f"{DATA}/nerf_synthetic/{s}/transforms_train.json" for s in BLENDER_SCENES],
        log:
            "logs/data/nerf_synthetic_extract.log",
        params:
            outdir=lambda wc, output: Path(output[0]).parent.parent,  # {DATA}/nerf_synthetic
        shell:
            "iga extract --archive {input} --out {params.outdir} --subdir nerf_synthetic {EXTRACT_FLAGS} > {log} 2>&1"

    def train_split_source(wildcards):
        """The mirror's scene folder (no input) or the zip's extraction of the scene (iga.data.scene_folder)."""
        if nerf_scene_source(NERF_MIRROR, wildcards.item) == "folder":
            return []
        return [f"{DATA}/nerf_synthetic/{wildcards.item}/transforms_train.json"]

    rule fetch_nerf_scene:
        input:
            train_split_source,
        output:
            f"{DATA}/nerf_synthetic_scenes/{{item}}/transforms_train.json",
        log:
            "logs/data/nerf_synthetic_scene_{item}.log",
        params:
            source=lambda wc, input: f"--from {Path(input[0]).parent}" if input else MIRROR_FLAG,
            outdir=lambda wc, output: Path(output[0]).parent,
        shell:
            "iga fetch-scene --dataset nerf_synthetic --scene {wildcards.item} --splits train --out {params.outdir}"
            " {params.source} > {log} 2>&1"

    rule make_nerf_scene:
        output:
            f"{DATA}/embedded/nerf/{{item}}_{{size}}px_{{views}}v/transforms_train.json",
        log:
            f"logs/data/embedded/nerf_{{item}}_{{size}}px_{{views}}v.log",
        params:
            n_test=NERF_SEC.embedded_scene.n_test,
        shell:
            "iga nerf-scene --out $(dirname {output}) --size {wildcards.size} --n-train {wildcards.views}"
            " --n-val 1 --n-test {params.n_test} > {log} 2>&1"

    rule train_nerf:
        input:
            unpack(
                train_inputs(
                    "nerf",
                    lambda wc: {
                        "scene": f"{nerf_scene_dir(wc.item)}/transforms_train.json",
                        "lpips": LPIPS_ON_NERF and LPIPS_STATUS,
                    },
                )
            ),
        output:
            **record_outputs("nerf"),
            curve=f"{RECORDS}/nerf/{{item}}/{{arch}}-{{method}}/s{{seed}}/train_log.jsonl",  # iga.nerf.curve
            render=f"{WORK}/nerf/{{item}}/{{arch}}-{{method}}/s{{seed}}/renders/test_000.png",  # Fig. 12's view
        log:
            f"{LOGS}/nerf/{{item}}/{{arch}}-{{method}}/s{{seed}}.log",
        benchmark:
            f"{WORK}/benchmarks/nerf/{{item}}/{{arch}}-{{method}}/s{{seed}}.tsv"
        threads: job_threads("train_nerf")
        resources:
            **job_resources("train_nerf"),
        params:
            settings=cell_settings("nerf"),
            outdir=lambda wc: f"{WORK}/nerf/{wc.item}/{wc.arch}-{wc.method}/s{wc.seed}",
            scene=lambda wc: nerf_scene_dir(wc.item),
            lpips=f"--lpips-status {LPIPS_STATUS}" if LPIPS_ON_NERF else "--no-lpips",
            code_version=RESULTS_VERSION,
            keep=keep_record("nerf"),
        shell:
            "(iga gpu-slot --gpus {resources.gpu} --label {log} -- iga nerf-train --settings {params.settings:q} --data {params.scene} {params.lpips}"
            " --out {params.outdir} --cell nerf/{wildcards.item}/{wildcards.arch}-{wildcards.method}/s{wildcards.seed}"
            " --threads {threads} && {params.keep}) > {log} 2>&1"

    rule collect_nerf:
        input:
            metrics=cell_outputs("nerf", "metrics.json"),
            config=config_stamp("collect_nerf", "nerf"),
        output:
            long=f"{RESULTS}/metrics/nerf_long.csv",
            built_from=built_from("collect_nerf"),
        log:
            f"{LOGS}/report/collect_nerf.log",
        params:
            preset=PRESET,
            dataset=NERF_SEC.dataset,
        shell:
            "iga collect --task nerf --dataset {params.dataset:q} --preset {params.preset}"
            " --metrics psnr,ssim,lpips --out {output.long} {input.metrics} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

    rule tables_nerf:
        input:
            long=rules.collect_nerf.output.long,
            config=config_stamp("tables_nerf", "nerf", reads=("note",)),
        output:
            [
                report(f"{RESULTS}/tables/{t}.{ext}", category="NeRF", subcategory=t, caption="../report/table.rst")
                for t in NERF_TABLES
                for ext in ("csv", "md", "tex")  # md: shown as a page (report.smk); csv, tex: downloads
            ],
            built_from=built_from("tables_nerf"),
        log:
            f"{LOGS}/report/tables_nerf.log",
        params:
            outdir=lambda wc, output: Path(output[0]).parent,
            tables=",".join(NERF_TABLES),
            note=NERF_NOTE,
        shell:
            "iga tables --long {input.long} --tables {params.tables} --out-dir {params.outdir}"
            " --scale-note {params.note:q} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

    NERF_FIG_ITEM = NERF_SEC.figure_item or NERF_SEC.items[0]

    rule figure_nerf:
        input:
            metrics=cell_outputs("nerf", "metrics.json"),
            # the shown view's renders, kept in the figure item's records (records.smk)
            renders=kept_figure_files("nerf", "renders/test_000.png", lambda c: c.item == NERF_FIG_ITEM),
            scene=ancient(f"{nerf_scene_dir(NERF_FIG_ITEM)}/transforms_train.json"),  # its ground truth
            config=config_stamp("figure_nerf", "nerf", reads=("note", "figures")),
        output:
            figure=report(f"{RESULTS}/figures/fig12_nerf_visual.png", category="NeRF", caption="../report/fig12.rst"),
            built_from=built_from("figure_nerf"),
        log:
            f"{LOGS}/report/figure_nerf.log",
        params:
            item=NERF_FIG_ITEM,
            note=NERF_NOTE,
        shell:
            "iga figure-nerf --item {params.item:q} --scale-note {params.note:q} --out {output.figure} {input.metrics} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

    rule figure_nerf_curves:
        input:
            logs=[f"{Path(m).parent}/train_log.jsonl" for m in cell_outputs("nerf", "metrics.json")],
            config=config_stamp("figure_nerf_curves", "nerf", reads=("note",)),
        output:
            figure=report(
                f"{RESULTS}/figures/nerf_training_curves.png", category="NeRF", caption="../report/training_curves.rst"
            ),
            built_from=built_from("figure_nerf_curves"),
        log:
            f"{LOGS}/report/figure_nerf_curves.log",
        params:
            note=NERF_NOTE,
        shell:
            "iga figure-curves --metric psnr --title 'NeRF: training PSNR per method (on the rays of each training step)'"
            " --scale-note {params.note:q} --out {output.figure} {input.logs} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

    rule figure_nerf_vs_paper:
        input:
            long=rules.collect_nerf.output.long,
            config=config_stamp("figure_nerf_vs_paper", "nerf", reads=("note",)),
        output:
            figure=report(
                f"{RESULTS}/figures/nerf_ours_vs_paper.png", category="NeRF", caption="../report/ours_vs_paper.rst"
            ),
            built_from=built_from("figure_nerf_vs_paper"),
        log:
            f"{LOGS}/report/figure_nerf_vs_paper.log",
        params:
            note=NERF_NOTE,
        shell:
            "iga figure-vs-paper --task nerf --scale-note {params.note:q} --out {output.figure} {input.long} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"
