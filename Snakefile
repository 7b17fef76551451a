# iga-repro: one workflow for every table and figure of the IGA paper.
#   snakemake --cores all                                  # the paper preset (GPU cluster scale)
#   snakemake --cores all --configfile presets/smoke.yaml  # the embedded default, offline, minutes on CPU
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


# validated in workflow/rules/common.smk by iga.workflow_config (the models that also generate
# workflow/schemas/config.schema.yaml), so that errors name the key, the value and what is allowed


include: "workflow/rules/common.smk"
include: "workflow/rules/records.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/image.smk"
include: "workflow/rules/ablation.smk"
include: "workflow/rules/toy.smk"
include: "workflow/rules/occupancy.smk"
include: "workflow/rules/nerf.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),  # workflow/rules/report.smk
