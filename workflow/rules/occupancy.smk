# 3D occupancy fitting (paper section 6.2, appendix E): Tables 2, 9 (= appendix Table 11) and Figure 5.
#
# Data, by tasks.occupancy.dataset:
#   stanford       Stanford scans: download (registry) → safe extract → voxelize (R³, ACORN convention)
#   occupancy_mat  the WIRE/FR-INR precomputed .mat volumes (thai, dragon only; mirror only) → volume
#                  (512³; a smaller task.resolution is made from it by block-mean downsampling)
#   embedded       a procedural watertight shape (analytic SDF → marching cubes) → the same voxelizer

if enabled("occupancy"):
    from iga.configs import validate
    from iga.data.registry import resolve as registry_resolve
    from iga.tasks.occupancy_config import OccupancyCellSettings

    OCC_SEC = CONFIG.tasks.occupancy  # validated (items vs meshes/mat_items too); defaults declared there
    OCC_DATASET = OCC_SEC.dataset
    OCC_TABLES = ["table2_occupancy_average", "table9_occupancy_iou"]
    OCC_VOXELIZE = OCC_SEC.voxelize.method
    # the paper's shapes are the same whichever way the volume was made: compare to its numbers
    OCC_NOTE = OCC_SEC.scale_note or SCALE_NOTE
    OCC_LABEL = "stanford" if OCC_DATASET in ("stanford", "occupancy_mat") else OCC_DATASET
    OCC_MAT_RESOLUTION = OCC_SEC.mat_resolution  # side of the published .mat volumes
    OCC_MAT_ITEM_RE = "|".join(OCC_SEC.mat_items) or "^$"  # items with a .mat volume (wildcard)

    @functools.lru_cache(maxsize=None)
    def occ_task(item, arch=None, method=None):
        """The cell's validated task settings (iga.tasks.occupancy_config): resolution, crop, …"""
        arch = arch or OCC_SEC.architectures[0]
        method = method or OCC_SEC.methods[0]
        seed = cell_seeds(config, "occupancy", item, arch, method)[0]  # task settings do not vary by seed
        return validate(OccupancyCellSettings, resolved(Cell("occupancy", item, arch, method, seed))).task

    def occ_volume(item, resolution):
        if OCC_DATASET == "stanford":
            return f"{DATA}/occupancy/volumes/{item}_{resolution}_{OCC_VOXELIZE}.npz"
        if OCC_DATASET == "occupancy_mat":
            if int(resolution) == OCC_MAT_RESOLUTION:
                return f"{DATA}/occupancy/mat_volumes/{item}.npz"
            return f"{DATA}/occupancy/mat_volumes/{item}_down{resolution}.npz"
        return f"{DATA}/embedded/occupancy/{item}_{resolution}_{OCC_VOXELIZE}.npz"

    def occ_cell_volume(wildcards):
        res = occ_task(wildcards.item, wildcards.arch, wildcards.method).resolution
        return occ_volume(wildcards.item, res)

    # --- data -----------------------------------------------------------------------------
    rule download_stanford_scan:
        output:
            f"{DATA}/stanford/{{item}}/{{filename}}",
        log:
            f"logs/data/stanford/{{item}}_{{filename}}.log",
        wildcard_constraints:
            filename=r"[A-Za-z0-9_.]+\.(tar\.gz|tgz|ply\.gz|zip)",
        params:
            mirror=MIRROR_FLAG,
        shell:
            "iga download --dataset stanford --item {wildcards.item} --out {output} {params.mirror}"
            " --no-progress {DOWNLOAD_FLAGS} > {log} 2>&1"

    rule extract_stanford_scan:
        input:
            lambda wc: f"{DATA}/stanford/{wc.item}/{registry_resolve('stanford', wc.item).filename}",
        output:
            directory(f"{DATA}/stanford/{{item}}/extracted"),
        log:
            f"logs/data/stanford/{{item}}_extract.log",
        shell:
            "iga extract --archive {input} --out {output} {EXTRACT_FLAGS} > {log} 2>&1"

    rule voxelize_stanford_scan:
        input:
            f"{DATA}/stanford/{{item}}/extracted",
        output:
            f"{DATA}/occupancy/volumes/{{item}}_{{res}}_{{vmethod}}.npz",
        log:
            f"logs/data/occupancy/voxelize_{{item}}_{{res}}_{{vmethod}}.log",
        benchmark:
            f"{WORK}/benchmarks/occupancy/voxelize_{{item}}_{{res}}_{{vmethod}}.tsv"
        wildcard_constraints:
            res=r"\d+",
            vmethod="winding|parity",
        resources:
            mem_mb=8000,
            runtime=30,
        params:
            member=lambda wc: OCC_SEC.meshes[wc.item],
        shell:
            "iga voxelize --mesh {input} --member {params.member:q} --resolution {wildcards.res}"
            " --method {wildcards.vmethod} --out {output} > {log} 2>&1"

    rule download_occupancy_mat:
        output:
            f"{DATA}/occupancy/mat/{{matitem}}.mat.zip",
        log:
            f"logs/data/occupancy/{{matitem}}_download.log",
        wildcard_constraints:
            matitem=r"[A-Za-z0-9_]+",
        params:
            mirror=MIRROR_FLAG,
        shell:
            "iga download --dataset occupancy --item {wildcards.matitem} --out {output} {params.mirror}"
            " --no-progress {DOWNLOAD_FLAGS} > {log} 2>&1"

    rule extract_occupancy_mat:
        input:
            f"{DATA}/occupancy/mat/{{matitem}}.mat.zip",
        output:
            directory(f"{DATA}/occupancy/mat/{{matitem}}"),
        log:
            f"logs/data/occupancy/{{matitem}}_extract.log",
        wildcard_constraints:
            matitem=r"[A-Za-z0-9_]+",
        shell:
            "iga extract --archive {input} --out {output} {EXTRACT_FLAGS} > {log} 2>&1"

    rule occupancy_mat_to_volume:
        input:
            lambda wc: f"{DATA}/occupancy/mat/{OCC_SEC.mat_items[wc.item]}",
        output:
            f"{DATA}/occupancy/mat_volumes/{{item}}.npz",
        log:
            f"logs/data/occupancy/{{item}}_mat_to_volume.log",
        wildcard_constraints:
            item=OCC_MAT_ITEM_RE,
        resources:
            mem_mb=4000,
        shell:
            "iga mat-to-volume --mat {input} --out {output} > {log} 2>&1"

    rule downsample_occupancy_mat:
        input:
            f"{DATA}/occupancy/mat_volumes/{{item}}.npz",
        output:
            f"{DATA}/occupancy/mat_volumes/{{item}}_down{{res}}.npz",
        log:
            f"logs/data/occupancy/{{item}}_down{{res}}.log",
        wildcard_constraints:
            item=OCC_MAT_ITEM_RE,
            res=r"\d+",
        resources:
            mem_mb=4000,
        shell:
            "iga downsample-volume --volume {input} --resolution {wildcards.res} --out {output} > {log} 2>&1"

    rule make_procedural_shape:
        output:
            f"{DATA}/embedded/occupancy/{{item}}.ply",
        log:
            f"logs/data/embedded/occupancy_{{item}}.log",
        shell:
            "iga make-shape --name {wildcards.item} --out {output} > {log} 2>&1"

    rule voxelize_procedural_shape:
        input:
            f"{DATA}/embedded/occupancy/{{item}}.ply",
        output:
            f"{DATA}/embedded/occupancy/{{item}}_{{res}}_{{vmethod}}.npz",
        log:
            f"logs/data/embedded/occupancy_{{item}}_{{res}}_{{vmethod}}.log",
        wildcard_constraints:
            res=r"\d+",
            vmethod="winding|parity",
        shell:
            "iga voxelize --mesh {input} --resolution {wildcards.res} --method {wildcards.vmethod}"
            " --out {output} > {log} 2>&1"

    # --- cells ----------------------------------------------------------------------------
    rule train_occupancy:
        input:
            unpack(train_inputs("occupancy", lambda wc: {"volume": occ_cell_volume(wc)})),
        output:
            **record_outputs("occupancy"),
            log=f"{RECORDS}/occupancy/{{item}}/{{arch}}-{{method}}/s{{seed}}/train_log.jsonl",
            epochs=f"{RECORDS}/occupancy/{{item}}/{{arch}}-{{method}}/s{{seed}}/epochs.jsonl",
            pred=f"{WORK}/occupancy/{{item}}/{{arch}}-{{method}}/s{{seed}}/pred_occupancy.npz",
            mesh=f"{WORK}/occupancy/{{item}}/{{arch}}-{{method}}/s{{seed}}/mesh.ply",
        log:
            f"{LOGS}/occupancy/{{item}}/{{arch}}-{{method}}/s{{seed}}.log",
        benchmark:
            f"{WORK}/benchmarks/occupancy/{{item}}/{{arch}}-{{method}}/s{{seed}}.tsv"
        threads: job_threads("train_occupancy")
        resources:
            **job_resources("train_occupancy"),
        params:
            settings=cell_settings("occupancy"),
            outdir=lambda wc, output: Path(output.pred).parent,
            volume=occ_cell_volume,
            code_version=RESULTS_VERSION,
            keep=keep_record("occupancy"),
        shell:
            "(iga gpu-slot --gpus {resources.gpu} --label {log} -- iga train-occupancy --settings {params.settings:q} --volume {params.volume}"
            " --out {params.outdir} --cell occupancy/{wildcards.item}/{wildcards.arch}-{wildcards.method}/s{wildcards.seed}"
            " --threads {threads} && {params.keep}) > {log} 2>&1"

    rule collect_occupancy:
        input:
            metrics=cell_outputs("occupancy", "metrics.json"),
            config=config_stamp("collect_occupancy", "occupancy"),
        output:
            long=f"{RESULTS}/metrics/occupancy_long.csv",
            built_from=built_from("collect_occupancy"),
        log:
            f"{LOGS}/report/collect_occupancy.log",
        params:
            preset=PRESET,
            dataset=OCC_LABEL,
        shell:
            "iga collect --task occupancy --dataset {params.dataset:q} --preset {params.preset}"
            " --metrics iou,iou_final,iou_running,iou_running_final --out {output.long} {input.metrics} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

    rule tables_occupancy:
        input:
            long=rules.collect_occupancy.output.long,
            config=config_stamp("tables_occupancy", "occupancy", reads=("note",)),
        output:
            [
                report(
                    f"{RESULTS}/tables/{t}.{ext}",
                    category="3D occupancy",
                    subcategory=t,
                    caption="../report/table.rst",
                )
                for t in OCC_TABLES
                for ext in ("csv", "md", "tex")  # md: shown as a page (report.smk); csv, tex: downloads
            ],
            built_from=built_from("tables_occupancy"),
        log:
            f"{LOGS}/report/tables_occupancy.log",
        params:
            outdir=lambda wc, output: Path(output[0]).parent,
            tables=",".join(OCC_TABLES),
            note=OCC_NOTE,
        shell:
            "iga tables --long {input.long} --tables {params.tables} --out-dir {params.outdir}"
            " --scale-note {params.note:q} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

    OCC_FIG = OCC_SEC.figures
    OCC_FIG_ITEM = OCC_FIG.item or OCC_SEC.items[0]

    rule figures_occupancy:
        input:
            volume=occ_volume(OCC_FIG_ITEM, occ_task(OCC_FIG_ITEM).resolution),
            # kept in the figure item's records (records.smk); the volume is data, not a training output
            preds=kept_figure_files("occupancy", "pred_occupancy.npz", lambda c: c.item == OCC_FIG_ITEM),
            config=config_stamp("figures_occupancy", "occupancy", reads=("note", "figures")),
        output:
            figure=report(
                f"{RESULTS}/figures/fig5_occupancy.png",
                category="3D occupancy",
                caption="../report/occupancy_fig5.rst",
            ),
            built_from=built_from("figures_occupancy"),
        log:
            f"{LOGS}/report/figures_occupancy.log",
        params:
            item=OCC_FIG_ITEM,
            crop=occ_task(OCC_FIG_ITEM).crop,
            archs=",".join(OCC_SEC.architectures),
            view=OCC_FIG.view_axis,
            note=OCC_NOTE,
        shell:
            "iga figure-occupancy --volume {input.volume} --crop {params.crop:q} --preds {input.preds}"
            " --item {params.item:q} --archs {params.archs:q} --view-axis {params.view:q}"
            " --scale-note {params.note:q} --out {output.figure} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

    rule figures_occupancy_curves:
        input:
            metrics=cell_outputs("occupancy", "metrics.json"),  # epochs.jsonl sits beside each
            long=rules.collect_occupancy.output.long,
            config=config_stamp("figures_occupancy_curves", "occupancy", reads=("note",)),
        output:
            curves=report(
                f"{RESULTS}/figures/occupancy_training_curves.png",
                category="3D occupancy",
                caption="../report/training_curves.rst",
            ),
            vs_paper=report(
                f"{RESULTS}/figures/occupancy_ours_vs_paper.png",
                category="3D occupancy",
                caption="../report/ours_vs_paper.rst",
            ),
            built_from=built_from("figures_occupancy_curves"),
        log:
            f"{LOGS}/report/figures_occupancy_curves.log",
        params:
            logs=lambda wc, input: " ".join(str(Path(m).with_name("epochs.jsonl")) for m in input.metrics),
            note=OCC_NOTE,
        shell:
            "(iga figure-curves --metric iou --title '3D occupancy: IoU of the evaluated epochs per method'"
            " --scale-note {params.note:q} --out {output.curves} {params.logs}"
            " && iga figure-vs-paper --task occupancy --scale-note {params.note:q} --out {output.vs_paper}"
            " {input.long}) > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"
