# 2D colour image fitting (paper section 6.1, appendix D): Tables 1, 6, 7, 8 and Figures 4, 10.

if enabled("image"):
    IMAGE_SEC = CONFIG.tasks.image  # validated; defaults declared there (iga.tasks.image_config)
    IMAGE_NOTE = IMAGE_SEC.scale_note or SCALE_NOTE
    IMAGE_TABLES = ["table1_image_average", "table6_image_psnr", "table7_image_ssim", "table8_image_lpips"]
    LPIPS_ON = CONFIG.lpips.enabled

    rule train_image:
        input:
            unpack(
                train_inputs(
                    "image", lambda wc: {"image": image_path("image", wc.item), "lpips": LPIPS_ON and LPIPS_STATUS}
                )
            ),
        output:
            **record_outputs("image"),
            log=f"{RECORDS}/image/{{item}}/{{arch}}-{{method}}/s{{seed}}/train_log.jsonl",
            recon=f"{WORK}/image/{{item}}/{{arch}}-{{method}}/s{{seed}}/recon.png",
        log:
            f"{LOGS}/image/{{item}}/{{arch}}-{{method}}/s{{seed}}.log",
        benchmark:
            f"{WORK}/benchmarks/image/{{item}}/{{arch}}-{{method}}/s{{seed}}.tsv"
        threads: job_threads("train_image")
        resources:
            **job_resources("train_image"),
        params:
            settings=cell_settings("image"),
            outdir=lambda wc, output: Path(output.recon).parent,
            image=lambda wc: image_path("image", wc.item),
            lpips=f"--lpips-status {LPIPS_STATUS}" if LPIPS_ON else "--no-lpips",
            code_version=RESULTS_VERSION,
            keep=keep_record("image"),
        shell:
            "(iga gpu-slot --gpus {resources.gpu} --label {log} -- iga train-image --settings {params.settings:q} --image {params.image} {params.lpips}"
            " --out {params.outdir} --cell image/{wildcards.item}/{wildcards.arch}-{wildcards.method}/s{wildcards.seed}"
            " --threads {threads} && {params.keep}) > {log} 2>&1"

    rule collect_image:
        input:
            metrics=cell_outputs("image", "metrics.json"),
            config=config_stamp("collect_image", "image"),
        output:
            long=f"{RESULTS}/metrics/image_long.csv",
            built_from=built_from("collect_image"),
        log:
            f"{LOGS}/report/collect_image.log",
        params:
            preset=PRESET,
            dataset=IMAGE_SEC.dataset,
        shell:
            "iga collect --task image --dataset {params.dataset:q} --preset {params.preset}"
            " --metrics psnr,psnr_final,ssim,lpips --out {output.long} {input.metrics} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

    rule tables_image:
        input:
            long=rules.collect_image.output.long,
            config=config_stamp("tables_image", "image", reads=("note",)),
        output:
            [
                report(
                    f"{RESULTS}/tables/{t}.{ext}",
                    category="2D images",
                    subcategory=t,
                    caption="../report/table.rst",
                )
                for t in IMAGE_TABLES
                for ext in ("csv", "md", "tex")  # md: shown as a page (report.smk); csv, tex: downloads
            ],
            built_from=built_from("tables_image"),
        log:
            f"{LOGS}/report/tables_image.log",
        params:
            outdir=lambda wc, output: Path(output[0]).parent,
            tables=",".join(IMAGE_TABLES),
            note=IMAGE_NOTE,
        shell:
            "iga tables --long {input.long} --tables {params.tables} --out-dir {params.outdir}"
            " --scale-note {params.note:q} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

    IMAGE_FIG = CONFIG.tasks.image.figure_choice()  # defaults filled in (iga.tasks.image_config)
    IMAGE_FIGURE_RECONS = kept_figure_files(  # the reconstructions Figs. 4 and 10 show
        "image",
        "recon.png",
        lambda c: (c.item == IMAGE_FIG.crops_item and c.arch == IMAGE_FIG.crops_arch)
        or c.item in IMAGE_FIG.visual_items,
    )

    def image_figure_inputs(wildcards):
        return {
            "gt": [image_path("image", i) for i in IMAGE_SEC.items],
            "recons": IMAGE_FIGURE_RECONS,
        }

    rule figures_image:
        input:
            unpack(image_figure_inputs),
            config=config_stamp("figures_image", "image", reads=("note", "figures")),
        output:
            crops=report(f"{RESULTS}/figures/fig4_image_crops.png", category="2D images", caption="../report/fig4.rst"),
            visual=report(
                f"{RESULTS}/figures/fig10_image_visual.png", category="2D images", caption="../report/fig10.rst"
            ),
            built_from=built_from("figures_image"),
        log:
            f"{LOGS}/report/figures_image.log",
        params:
            gt=lambda wc, input: " ".join(f"{i}={p}" for i, p in zip(IMAGE_SEC.items, input.gt)),
            crops_item=IMAGE_FIG.crops_item,
            crops_arch=IMAGE_FIG.crops_arch,
            visual_items=" ".join(shlex.quote(str(i)) for i in IMAGE_FIG.visual_items),
            archs=",".join(IMAGE_SEC.architectures),
            note=IMAGE_NOTE,
        shell:
            "(iga figure-image --kind crops --gt {params.gt} --recons {input.recons}"
            " --items {params.crops_item:q} --arch {params.crops_arch:q} --scale-note {params.note:q} --out {output.crops}"
            " && iga figure-image --kind visual --gt {params.gt} --recons {input.recons}"
            " --items {params.visual_items} --archs {params.archs} --scale-note {params.note:q}"
            " --out {output.visual}) > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

    rule figures_image_curves:
        input:
            metrics=cell_outputs("image", "metrics.json"),  # train_log.jsonl sits beside each
            long=rules.collect_image.output.long,
            config=config_stamp("figures_image_curves", "image", reads=("note",)),
        output:
            curves=report(
                f"{RESULTS}/figures/image_training_curves.png",
                category="2D images",
                caption="../report/training_curves.rst",
            ),
            vs_paper=report(
                f"{RESULTS}/figures/image_ours_vs_paper.png",
                category="2D images",
                caption="../report/ours_vs_paper.rst",
            ),
            built_from=built_from("figures_image_curves"),
        log:
            f"{LOGS}/report/figures_image_curves.log",
        params:
            logs=lambda wc, input: " ".join(str(Path(m).with_name("train_log.jsonl")) for m in input.metrics),
            note=IMAGE_NOTE,
        shell:
            "(iga figure-curves --metric psnr --title 'Image fitting: training PSNR (batch) per method'"
            " --scale-note {params.note:q} --out {output.curves} {params.logs}"
            " && iga figure-vs-paper --task image --scale-note {params.note:q} --out {output.vs_paper}"
            " {input.long}) > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"
