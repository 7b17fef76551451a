# Cells' records (iga.cell_records): a training rule writes the cell into work/ and keeps its record
# (metrics, provenance, a thinned training log) under results/{preset}/cells/. The few large files a
# figure shows (a reconstruction, an occupancy prediction, a NeRF render) are kept only for the cells
# that figure shows, by this rule, so committed results stay small at every scale.


# Only from the training the record describes (iga.cell_records.keep_figure_file): a work/ folder of another
# training would put its picture beside the record's numbers.
rule keep_figure_file:
    input:
        kept=f"{WORK}/{{task}}/{{item}}/{{arch}}-{{method}}/s{{seed}}/{{file}}",
        # what it is checked against; ancient: its checkout time alone must not pull the cell's training
        record=ancient(f"{RECORDS}/{{task}}/{{item}}/{{arch}}-{{method}}/s{{seed}}/provenance.json"),
    output:
        f"{RECORDS}/{{task}}/{{item}}/{{arch}}-{{method}}/s{{seed}}/{{file}}",
    log:
        f"{LOGS}/keep/{{task}}/{{item}}/{{arch}}-{{method}}/s{{seed}}/{{file}}.log",
    wildcard_constraints:
        task="image|occupancy|nerf",
        file=r"recon\.png|pred_occupancy\.npz|renders/test_000\.png",
    shell:
        "iga keep-figure-file --file {wildcards.file:q} --source {input.kept:q} --dest {output:q} > {log} 2>&1"
