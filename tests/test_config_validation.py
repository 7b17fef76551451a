"""Every bad config of issue #14 is rejected before any job, with the key path, the value and what is allowed.

The unit tests call iga.workflow_config.validate_config, the function the workflow runs when it parses
(workflow/rules/common.smk); one test runs `snakemake -n` to show that nothing is planned.
"""

from __future__ import annotations

import copy
import shutil

import pytest
import yaml
from snakemake_runner import ROOT, run_snakemake

from iga.cells import deep_merge
from iga.configs import ConfigError
from iga.workflow_config import json_schema, typed_command_line, validate_config

PAPER = yaml.safe_load((ROOT / "config.yaml").read_text())
SMOKE = deep_merge(PAPER, yaml.safe_load((ROOT / "presets" / "smoke.yaml").read_text()))


def with_overlay(text: str, base=SMOKE) -> dict:
    """The config as Snakemake builds it: base ← overlay (YAML text, so YAML 1.1 typing applies)."""
    return deep_merge(copy.deepcopy(base), yaml.safe_load(text))


def rejected(text: str, *words: str, base=SMOKE) -> str:
    with pytest.raises(ConfigError) as exc:
        validate_config(with_overlay(text, base), base=base)
    msg = str(exc.value)
    for w in words:
        assert w in msg, (w, msg)
    return msg


def test_the_committed_presets_are_valid():
    validate_config(PAPER)  # config.yaml's own override patterns all match its cells
    for cfg in (SMOKE, deep_merge(PAPER, yaml.safe_load((ROOT / "presets" / "mini.yaml").read_text()))):
        validate_config(cfg, base=PAPER)


def test_a_typo_in_a_task_level_key_is_rejected():
    rejected(
        'tasks:\n  image:\n    overides: {"PE-IGA": {optim: {lr: 0.01}}}\n',
        "unknown key 'tasks.image.overides'",
        "overrides",
    )


def test_a_typo_in_a_figures_key_is_rejected():
    rejected(
        "tasks:\n  image:\n    figures: {crop_item: astronaut}\n",
        "unknown key 'tasks.image.figures.crop_item'",
        "crops_item",
    )


def test_an_override_pattern_that_matches_no_cell_is_rejected():
    rejected(
        'tasks:\n  image:\n    overrides: {"cofee/PE-IGA": {adjuster: {end: 4}}}\n',
        "tasks.image.overrides",
        "'cofee/PE-IGA' matches no cell",
    )
    rejected('tasks:\n  image:\n    overrides: {"PE-IGAA": {adjuster: {end: 4}}}\n', "'PE-IGAA' matches no cell")


def test_yaml_1_1_exponent_text_gets_a_hint():
    msg = rejected("tasks:\n  image:\n    settings:\n      optim: {gamma: 1e-1}\n", "optim.gamma='1e-1'")
    assert "YAML 1.1 reads 1e-1 as text" in msg and "1.0e-3" in msg


def test_a_quoted_number_is_told_to_drop_the_quotes():
    msg = rejected('tasks:\n  image:\n    settings:\n      optim: {lr: "0.01"}\n', "optim.lr='0.01'")
    assert "is quoted: write it without quotes" in msg and "YAML 1.1" not in msg


def test_command_line_config_is_typed_as_a_config_file():
    """Snakemake hands nested --config values over as text; they are read as YAML files read them."""
    text = {"tasks": {"image": {"settings": {"train": {"iterations": "100"}, "optim": {"lr": "1.0e-3"}}}}}
    typed = typed_command_line({**text, "flags": ["true", "null", "1e-3", "a: b", "/a path"]})
    assert typed["tasks"]["image"]["settings"] == {"train": {"iterations": 100}, "optim": {"lr": 0.001}}
    assert typed["flags"] == [True, None, "1e-3", "a: b", "/a path"]  # YAML 1.1: 1e-3 stays text, as in a file


def test_the_workflow_takes_numbers_from_the_command_line(tmp_path):
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")  # the Snakefile's configfile, read from the workdir
    args = ("-n", "--quiet", "rules", "--configfile", str(ROOT / "presets" / "smoke.yaml"))
    ok = run_snakemake(tmp_path, *args, "--config", "tasks={image: {settings: {train: {iterations: 12}}}}")
    assert ok.returncode == 0, (ok.stdout + ok.stderr)[-2000:]
    bad = run_snakemake(tmp_path, *args, "--config", "tasks={image: {settings: {train: {iterations: many}}}}")
    assert bad.returncode != 0 and "train.iterations='many'" in bad.stdout + bad.stderr
    # a --configfile is a config file: a quoted number there is still refused, as in config.yaml
    (tmp_path / "quoted.yaml").write_text('tasks: {image: {settings: {train: {iterations: "12"}}}}\n')
    quoted = run_snakemake(tmp_path, *args, str(tmp_path / "quoted.yaml"))
    assert quoted.returncode != 0 and "the number 12 is quoted" in quoted.stdout + quoted.stderr


def test_an_unknown_method_names_its_task():
    rejected("tasks:\n  image:\n    methods: [vanilla, XYZ]\n", "tasks.image: method='XYZ' is not allowed", "'IGA'")
    msg = rejected('tasks:\n  image:\n    overrides: {"PE-IGA": {train: {seeds: [1, 1]}}}\n', "seeds must be unique")
    assert msg.count("tasks.image") == 1, msg  # named once


@pytest.mark.parametrize(
    "knob, words",
    [
        ("fig1_widths: [999]", ["tasks.toy.figures.fig1_widths=[999]: [999] not among", "[256, 512, 1024]"]),
        ("fig1_end: 11", ["tasks.toy.figures.fig1_end=11", "[15]"]),
        ("fig2_group_size: 3", ["tasks.toy.figures.fig2_group_size=3", "[1, 4, 8]"]),
        ("fig3_component: 40", ["tasks.toy.figures.fig3_component=40", "components"]),
    ],
)
def test_a_toy_figure_knob_must_name_a_value_of_the_cells(knob, words):
    """The toy figures used to pick another width/end/group silently; now the config is refused."""
    rejected(f"tasks:\n  toy:\n    figures: {{{knob}}}\n", *words)


@pytest.mark.parametrize(
    "overlay, words",
    [
        ("tasks:\n  image:\n    embedded_size: [72, 0]\n", ["tasks.image.embedded_size.1=0", "greater than 0"]),
        ('output_root: "work/my run"\n', ["output_root='work/my run'", "should match pattern"]),
        ("tasks:\n  image:\n    grids: {extra: {items: [astronaut]}}\n", ["named grids ['extra']", "no table"]),
        ("tasks:\n  image_ablation:\n    figures: {crops_arch: PE}\n", ["the ablation draws no figure"]),
        (
            "tasks:\n  occupancy:\n    overrides: {PE-IGA: {train: {iterations: 50}}}\n",
            ["cell occupancy/bumpy/PE-IGA", "train.iterations is derived for occupancy cells"],
        ),
        (  # smoke: a 48^3 grid; groups of 64^3 voxels do not fit in it
            "tasks:\n  occupancy:\n    overrides: {PE-vanilla: {task: {group_size: 262144}}}\n",
            ["cell occupancy/bumpy/PE-vanilla", "task.group_size=262144 exceeds the 48^3 grid's 110592 voxels"],
        ),
        (  # 48^3 = 110592 voxels hold at most 6 groups of 16384: end=6 needs 7
            "tasks:\n  occupancy:\n    overrides: {PE-IGA: {task: {group_size: 16384}, adjuster: {end: 6}}}\n",
            ["cell occupancy/bumpy/PE-IGA", "adjuster.end=6 does not fit 6 groups", "allowed: 1..5"],
        ),
    ],
)
def test_settings_that_a_job_would_refuse_or_ignore_are_rejected_first(overlay, words):
    rejected(overlay, *words)


def test_a_cell_error_says_which_part_of_the_config_set_the_value():
    rejected(
        'tasks:\n  image:\n    overrides: {"PE-IGA": {adjuster: {end: 54}}}\n',
        "(set by tasks.image.overrides['PE-IGA'])",
    )
    rejected("tasks:\n  image:\n    settings: {optim: {lr: -1}}\n", "optim.lr=-1", "(set by tasks.image.settings)")
    rejected(
        "tasks:\n  image_ablation:\n    variants: {RSI: {adjuster: {sampling: xyz}}}\n",
        "(set by tasks.image_ablation.variants.RSI)",
    )


def test_a_word_where_a_number_belongs_is_rejected():
    rejected(
        'tasks:\n  image:\n    overrides: {"SIREN-IGA": {model: {first_omega0: "thirty"}}}\n',
        "cell image/astronaut/SIREN-IGA",
        "model.first_omega0='thirty'",
        "valid number",
    )


def test_a_non_positive_width_is_rejected():
    rejected(
        "tasks:\n  image:\n    settings:\n      model: {hidden_features: 0}\n",
        "model.hidden_features=0",
        "greater than or equal to 1",
    )


def test_an_unknown_device_is_rejected():
    rejected(
        "tasks:\n  image:\n    settings:\n      train: {device: gpu}\n",
        "train.device='gpu'",
        "String should match pattern",
    )


@pytest.mark.parametrize("end", [0, 24, 500])
def test_end_outside_the_groups_is_rejected(end):
    # smoke images 72x48 in 8x8 patches: 54 groups; Adam's target λ_end needs end <= 53
    text = f'tasks:\n  image:\n    overrides: {{"PE-IGA": {{adjuster: {{end: {end}}}}}}}\n'
    if end == 24:
        validate_config(with_overlay(text), base=SMOKE)
        return
    rejected(text, "cell image/astronaut/PE-IGA", f"adjuster.end={end}")


def test_a_patch_size_that_does_not_divide_the_image_is_rejected():
    rejected(
        "tasks:\n  image:\n    settings:\n      task: {patch_size: 7}\n",
        "task.patch_size=7 must divide the (downsampled) image 72x48",
    )
    rejected("tasks:\n  image:\n    settings:\n      task: {downsample: 5}\n", "task.downsample=5 must divide")


def test_a_figure_item_that_is_not_an_item_is_rejected():
    rejected(
        "tasks:\n  image:\n    figures: {crops_item: chelsea}\n",
        "figures.crops_item names ['chelsea']",
        "['astronaut', 'coffee']",
    )


def test_nerf_settings_are_typed():
    rejected(
        "tasks:\n  nerf:\n    settings:\n      run: {num_rays: many}\n",
        "cell nerf/procedural/NeRF-vanilla",
        "run.num_rays='many'",
    )
    rejected(
        "tasks:\n  nerf:\n    settings:\n      adjuster: {end: 300}\n",
        "adjuster.end=300 must be smaller than run.num_rays=256",
    )
    rejected("tasks:\n  nerf:\n    settings:\n      iga_end: 4\n", "unknown key 'iga_end'")


def test_resources_name_a_training_rule():
    rejected("resources:\n  train_imgae: {gpu: 1}\n", "train_imgae", "train_image")


def test_an_unknown_item_of_the_dataset_is_rejected():
    rejected("tasks:\n  image:\n    items: [astronaut, kodim01]\n", "['kodim01'] are not embedded images")
    rejected(  # in a named grid too
        "tasks:\n  image_ablation:\n    grids: {table4: {items: [nope], architectures: [PE, MLP]}}\n",
        "tasks.image_ablation",
        "['MLP'] are not image architectures",
    )
    rejected("tasks:\n  image_ablation:\n    grids: {table4: {items: [nope]}}\n", "['nope'] are not embedded images")
    # a real Kodak image without a checksummed source cannot be downloaded: refused before the download job
    rejected(
        "tasks:\n  image:\n    dataset: kodak\n    items: [kodim01, kodim12]\n"
        "    figures: {crops_item: kodim01, visual_items: [kodim01]}\n",
        "['kodim12'] are not kodak images with a checksummed source",
        "kodim08",
        base=PAPER,
    )


def test_the_committed_json_schema_is_generated_from_the_models():
    committed = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert committed == json_schema(), "run: iga config-schema --out workflow/schemas/config.schema.yaml"


def test_the_workflow_rejects_a_bad_config_before_planning_any_job(tmp_path):
    (tmp_path / "bad.yaml").write_text("tasks:\n  image:\n    overides: {}\n")
    res = run_snakemake(
        tmp_path, "-n", "--configfile", str(ROOT / "presets" / "smoke.yaml"), str(tmp_path / "bad.yaml")
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "invalid config: unknown key 'tasks.image.overides'" in out, out[-2000:]
    assert "Job stats" not in out and "rule train_" not in out


def test_every_bad_cell_is_listed_in_one_message_grouped_by_problem():
    msg = rejected(
        'tasks:\n  image:\n    overrides:\n      "PE-IGA": {adjuster: {end: 999}}\n'
        '      "astronaut/SIREN-BN": {model: {hidden_features: 0}}\n'
        "  occupancy:\n    overrides: {PE-vanilla: {task: {group_size: 262144}}}\n",
    )
    lines = msg.splitlines()
    assert len(lines) == 3, msg
    assert lines[0].startswith("cell image/astronaut/PE-IGA/s4096 (and 1 more: image/coffee/PE-IGA/s4096)")
    assert "adjuster.end=999" in lines[0] and "tasks.image.overrides['PE-IGA']" in lines[0]
    assert lines[1].startswith("cell image/astronaut/SIREN-BN/s4096: model.hidden_features=0")
    assert lines[2].startswith("cell occupancy/bumpy/PE-vanilla/s4096: task.group_size=262144")


@pytest.mark.parametrize(
    "overlay, words",
    [
        (  # smoke's images are astronaut and coffee: kodim05 is a Kodak image, but not one of this run's
            'tasks:\n  image:\n    overrides: {"kodim05/PE-IGA": {adjuster: {end: 3}}}\n',
            ["tasks.image.overrides: pattern 'kodim05/PE-IGA' matches no cell of this run", "astronaut"],
        ),
        ('tasks:\n  image:\n    overrides: {"NeRF-FR": {optim: {lr: 0.1}}}\n', ["pattern 'NeRF-FR' matches no cell"]),
        ('tasks:\n  image:\n    overrides: {"PE-NTK": {optim: {lr: 0.1}}}\n', ["pattern 'PE-NTK' matches no cell"]),
        (
            "tasks:\n  image_ablation:\n    grids: {tabel5: {items: [astronaut], methods: [vanilla]}}\n",
            ["grids ['tabel5']: no table reads them", "['table4', 'table5', 'variants']"],
        ),
        ("tasks:\n  toy:\n    grids: {exp3: {items: [exp2_s16]}}\n", ["grids ['exp3']", "['exp1', 'exp2']"]),
        ("tasks:\n  image:\n    items: []\n", ["tasks.image has no cell: items=[]", "enabled: false"]),
        ("tasks:\n  occupancy:\n    items: []\n", ["tasks.occupancy has no cell"]),
    ],
)
def test_an_edit_that_would_change_nothing_is_rejected(overlay, words):
    rejected(overlay, *words)


def test_an_inherited_override_may_name_cells_the_preset_does_not_have():
    # config.yaml's "ficus/NeRF-IGA" (end 30) stays in every preset; smoke has no ficus
    assert "ficus/NeRF-IGA" in SMOKE["tasks"]["nerf"]["overrides"]
    validate_config(SMOKE, base=PAPER)
    changed = with_overlay('tasks:\n  nerf:\n    overrides: {"ficus/NeRF-IGA": {adjuster: {end: 31}}}\n')
    rejected_msg = pytest.raises(ConfigError, validate_config, changed, base=PAPER)
    assert "pattern 'ficus/NeRF-IGA' matches no cell of this run" in str(rejected_msg.value)


def test_every_problem_of_every_kind_is_listed_at_once():
    msg = rejected(
        "tasks:\n  image:\n    settings: {optim: {gamma: 1e-1}}\n"
        '    overrides: {"kodim05/PE-IGA": {adjuster: {end: 3}}, "kodim06/PE-IGA": {adjuster: {end: 3}}}\n'
        '  nerf:\n    overrides: {"NeRF-IGA": {run: {num_rays: "many"}}}\n'
        "  toy:\n    figures: {fig1_widths: [333]}\n",
    )
    for words in ("'kodim05/PE-IGA'", "'kodim06/PE-IGA'", "optim.gamma='1e-1'", "run.num_rays='many'", "fig1_widths"):
        assert words in msg, (words, msg)


@pytest.mark.parametrize("width", [7, -3])
def test_a_task_setting_that_every_cell_overrides_is_rejected(width):
    # every toy cell's width comes from its item's override (exp1_w256_*, …): the edit would change nothing
    rejected(
        f"tasks:\n  toy:\n    settings: {{model: {{hidden_features: {width}}}}}\n",
        f"tasks.toy.settings.model.hidden_features={width} has no effect",
    )


def test_a_task_setting_that_some_cell_reads_is_kept():
    validate_config(with_overlay("tasks:\n  image:\n    settings: {optim: {lr: 0.002}}\n"), base=SMOKE)


def test_a_variant_that_no_cell_uses_is_rejected():
    rejected(
        "tasks:\n  image_ablation:\n    variants: {P32: {task: {patch_size: 32}}}\n",
        "tasks.image_ablation.variants.P32 is used by no cell",
    )


def test_an_overlay_that_narrows_a_preset_keeps_the_presets_overrides():
    mini = deep_merge(PAPER, yaml.safe_load((ROOT / "presets" / "mini.yaml").read_text()))
    narrow = (
        "tasks:\n  image_ablation: {enabled: false}\n  image:\n    items: [kodim01]\n"
        "    figures: {crops_item: kodim01, visual_items: [kodim01]}\n"
    )
    validate_config(with_overlay(narrow, mini), base=mini)  # mini's "kodim03/*" overrides stay, unused
    rejected(narrow + '    overrides: {"kodim03/PE-IGA": {adjuster: {end: 9}}}\n', "'kodim03/PE-IGA'", base=mini)


def test_a_disabled_task_is_checked_all_the_same():
    # a typo in a task that is switched off must not wait for the day it is switched on
    msg = rejected("tasks:\n  toy:\n    enabled: false\n    settings: {train: {colour: red}}\n")
    assert "unknown key 'train.colour'" in msg and "tasks.toy is disabled" in msg
    # switched off, with nothing wrong: accepted, and its overrides need not match a cell of the run
    validate_config(with_overlay("tasks:\n  toy: {enabled: false}\n"), base=SMOKE)


def test_a_disabled_task_is_not_held_to_data_it_does_not_load():
    # its settings are checked for keys, types and ranges, not against data it does not load: a patch that
    # does not tile Table 4's 64x32 pictures stops nothing while Table 4 is off, and stops the run once it is on
    overlay = "tasks:\n  image_ablation:\n    settings: {task: {patch_size: 6}}\n"
    validate_config(with_overlay(overlay + "    enabled: false\n"), base=SMOKE)
    assert "task.patch_size=6 must divide the (downsampled) image 64x32" in rejected(overlay)
