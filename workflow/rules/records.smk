# Cells' records (iga.cell_records): a training rule writes the cell into work/ and keeps its record
# (metrics, provenance, a thinned training log) under results/{preset}/cells/. The few large files a
# figure shows (a reconstruction, an occupancy prediction, a NeRF render) are kept only for the cells
# that figure shows, by this rule, so committed results stay small at every scale.


rule keep_figure_file:
    input:
        f"{WORK}/{{task}}/{{item}}/{{arch}}-{{method}}/s{{seed}}/{{file}}",
    output:
        f"{RECORDS}/{{task}}/{{item}}/{{arch}}-{{method}}/s{{seed}}/{{file}}",
    log:
        f"{LOGS}/keep/{{task}}/{{item}}/{{arch}}-{{method}}/s{{seed}}/{{file}}.log",
    wildcard_constraints:
        task="image|occupancy|nerf",
        file=r"recon\.png|pred_occupancy\.npz|renders/test_000\.png",
    shell:
        "cp -v {input:q} {output:q} > {log} 2>&1"
