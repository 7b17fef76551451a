# Toy studies (paper section 5, appendix C): Figures 1, 2, 3, 6-9, the width study of Exp. 1 and the
# exp1/exp2 tables. Cells come from tasks.toy.grids.exp1 / .exp2 (one training job per cell).

if enabled("toy"):
    TOY_SEC = CONFIG.tasks.toy  # validated; its defaults are declared there (iga.tasks.toy_config)
    TOY_FIG = TOY_SEC.figures
    TOY_NOTE = TOY_SEC.scale_note or SCALE_NOTE
    TOY_EXPS = [g for g in TOY_SEC.TABLE_GRIDS if g in TOY_SEC.grids and enumerate_cells(config, "toy", g)]
    TOY_CAT = "Toy studies (section 5)"

    def toy_cells(exp, filename):
        return cell_outputs("toy", filename, exp) if exp in TOY_SEC.grids else []

    # the cost table (rule cost_table) reads every training cell's result record

    rule train_toy:
        input:
            unpack(train_inputs("toy")),  # the toy data is generated from the settings themselves
        output:
            **record_outputs("toy"),
            log=f"{RECORDS}/toy/{{item}}/{{arch}}-{{method}}/s{{seed}}/train_log.jsonl",
            curve=f"{RECORDS}/toy/{{item}}/{{arch}}-{{method}}/s{{seed}}/curve.npz",
        log:
            f"{LOGS}/toy/{{item}}/{{arch}}-{{method}}/s{{seed}}.log",
        benchmark:
            f"{WORK}/benchmarks/toy/{{item}}/{{arch}}-{{method}}/s{{seed}}.tsv"
        threads: job_threads("train_toy")
        resources:
            **job_resources("train_toy"),
        params:
            settings=cell_settings("toy"),
            outdir=lambda wc: f"{WORK}/toy/{wc.item}/{wc.arch}-{wc.method}/s{wc.seed}",
            code_version=RESULTS_VERSION,
            keep=keep_record("toy"),
        shell:
            "(iga gpu-slot --gpus {resources.gpu} --label {log} -- iga toy-train --settings {params.settings:q} --out {params.outdir}"
            " --cell toy/{wildcards.item}/{wildcards.arch}-{wildcards.method}/s{wildcards.seed}"
            " --threads {threads} && {params.keep}) > {log} 2>&1"

    if "exp1" in TOY_EXPS:

        rule tables_toy_exp1:
            input:
                metrics=toy_cells("exp1", "metrics.json"),
                curves=toy_cells("exp1", "curve.npz"),
                config=config_stamp("tables_toy_exp1", "toy", reads=("note",)),
            output:
                [
                    report(
                        f"{RESULTS}/tables/{t}.{ext}",
                        category=TOY_CAT,
                        subcategory="Exp. 1 tables",
                        caption="../report/toy_tables.rst",
                    )
                    for t in ("exp1_final_errors", "exp1_convergence_with_width")
                    for ext in ("csv", "md")
                ],
                built_from=built_from("tables_toy_exp1"),
            log:
                f"{LOGS}/report/tables_toy_exp1.log",
            params:
                preset=PRESET,
                outdir=lambda wc, output: Path(output[0]).parent,
                note=TOY_NOTE,
                dataset=TOY_SEC.dataset,
            shell:
                "iga toy-tables --experiment exp1 --preset {params.preset} --dataset {params.dataset:q}"
                " --scale-note {params.note:q} --out-dir {params.outdir} {input.metrics} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

        rule figures_toy_exp1:
            input:
                metrics=toy_cells("exp1", "metrics.json"),
                curves=toy_cells("exp1", "curve.npz"),
                config=config_stamp("figures_toy_exp1", "toy", reads=("note", "figures")),
            output:
                fig1=report(
                    f"{RESULTS}/figures/fig1_ntk_vs_entk.png",
                    category=TOY_CAT,
                    subcategory="Exp. 1",
                    caption="../report/toy_fig1.rst",
                ),
                fig6=report(
                    f"{RESULTS}/figures/fig6_ntk_vs_entk_all.png",
                    category=TOY_CAT,
                    subcategory="Exp. 1",
                    caption="../report/toy_fig6.rst",
                ),
                width=report(
                    f"{RESULTS}/figures/exp1_convergence_with_width.png",
                    category=TOY_CAT,
                    subcategory="Exp. 1",
                    caption="../report/toy_width.rst",
                ),
                built_from=built_from("figures_toy_exp1"),
            log:
                f"{LOGS}/report/figures_toy_exp1.log",
            params:
                widths=",".join(str(w) for w in TOY_FIG.fig1_widths),
                end=TOY_FIG.fig1_end,
                note=TOY_NOTE,
            shell:
                "iga toy-figures --experiment exp1 --out fig1={output.fig1} --out fig6={output.fig6}"
                " --out width={output.width} --fig1-widths {params.widths:q} --fig1-end {params.end:q}"
                " --scale-note {params.note:q} {input.metrics} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

    if "exp2" in TOY_EXPS:
        TOY_EXP2_ARCHS = TOY_SEC.grids["exp2"].architectures or TOY_SEC.architectures
        TOY_EXP2_FIGS = {
            "fig2": f"{RESULTS}/figures/fig2_progressive_impacts.png",
            "fig3": f"{RESULTS}/figures/fig3_group_size_40hz.png",
            "fig7": f"{RESULTS}/figures/fig7_progressive_all_groups.png",
        }
        if "ReLU" in TOY_EXP2_ARCHS:
            TOY_EXP2_FIGS["fig8"] = f"{RESULTS}/figures/fig8_relu_all_freqs.png"
        if "SIREN" in TOY_EXP2_ARCHS:
            TOY_EXP2_FIGS["fig9"] = f"{RESULTS}/figures/fig9_siren_all_freqs.png"

        rule tables_toy_exp2:
            input:
                metrics=toy_cells("exp2", "metrics.json"),
                curves=toy_cells("exp2", "curve.npz"),
                config=config_stamp("tables_toy_exp2", "toy", reads=("note",)),
            output:
                [
                    report(
                        f"{RESULTS}/tables/exp2_final_errors.{ext}",
                        category=TOY_CAT,
                        subcategory="Exp. 2 tables",
                        caption="../report/toy_tables.rst",
                    )
                    for ext in ("csv", "md")
                ],
                built_from=built_from("tables_toy_exp2"),
            log:
                f"{LOGS}/report/tables_toy_exp2.log",
            params:
                preset=PRESET,
                outdir=lambda wc, output: Path(output[0]).parent,
                note=TOY_NOTE,
                dataset=TOY_SEC.dataset,
            shell:
                "iga toy-tables --experiment exp2 --preset {params.preset} --dataset {params.dataset:q}"
                " --scale-note {params.note:q} --out-dir {params.outdir} {input.metrics} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

        rule figures_toy_exp2:
            input:
                metrics=toy_cells("exp2", "metrics.json"),
                curves=toy_cells("exp2", "curve.npz"),
                config=config_stamp("figures_toy_exp2", "toy", reads=("note", "figures")),
            output:
                **{
                    k: report(v, category=TOY_CAT, subcategory="Exp. 2", caption=f"../report/toy_{k}.rst")
                    for k, v in TOY_EXP2_FIGS.items()
                },
                built_from=built_from("figures_toy_exp2"),
            log:
                f"{LOGS}/report/figures_toy_exp2.log",
            params:
                outs=" ".join(f"--out {k}={v}" for k, v in TOY_EXP2_FIGS.items()),
                group=TOY_FIG.fig2_group_size,
                component=TOY_FIG.fig3_component,
                note=TOY_NOTE,
            shell:
                "iga toy-figures --experiment exp2 {params.outs} --fig2-group-size {params.group:q}"
                " --fig3-component {params.component:q} --scale-note {params.note:q} {input.metrics} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"

    if TOY_EXPS:

        rule figures_toy_curves:
            input:
                metrics=toy_cells("exp1", "metrics.json") + toy_cells("exp2", "metrics.json"),
                config=config_stamp("figures_toy_curves", "toy", reads=("note",)),
            output:
                figure=report(
                    f"{RESULTS}/figures/toy_training_curves.png",
                    category=TOY_CAT,
                    caption="../report/training_curves.rst",
                ),
                built_from=built_from("figures_toy_curves"),
            log:
                f"{LOGS}/report/figures_toy_curves.log",
            params:
                logs=lambda wc, input: " ".join(str(Path(m).with_name("train_log.jsonl")) for m in input.metrics),
                note=TOY_NOTE,
            shell:
                "iga figure-curves --metric mse --panels item-arch"
                " --title 'Toy studies: training MSE per method; the paper shows these as figures, not a table'"
                " --scale-note {params.note:q} --out {output.figure} {params.logs} > {log} 2>&1 && cp {input.config:q} {output.built_from:q}"
