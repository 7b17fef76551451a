"""Seeds as an axis of the cell grid: identity, expansion, validation, long form and tables."""

from __future__ import annotations

import csv
import json
import statistics

import pytest

from iga.cells import Cell, enumerate_cells, resolve_settings
from iga.cli import main
from iga.configs import ConfigError
from iga.report import replicates
from iga.report.ablation_tables import build_table4
from iga.report.tables import TABLES, build_table, write_table


def test_cell_id_and_folder_round_trip_with_the_seed(tmp_path):
    c = Cell("image", "kodim03", "PE", "IGA-RSI", 4097)
    assert c.id == "image/kodim03/PE-IGA-RSI/s4097" and c.key == "image/kodim03/PE-IGA-RSI"
    assert c.dir(tmp_path) == tmp_path / "image" / "kodim03" / "PE-IGA-RSI" / "s4097"
    assert Cell.from_id(c.id) == c
    assert Cell.from_path(c.dir(tmp_path)) == c and Cell.from_path(c.dir(tmp_path) / "metrics.json") == c
    for bad in ("image/kodim03/PE-IGA", "image/kodim03/PE-IGA/seed1", "image/kodim03/PEIGA/s1"):
        with pytest.raises(ConfigError, match="cell id"):
            Cell.from_id(bad)
    with pytest.raises(ConfigError, match="sSEED"):
        Cell.from_path(tmp_path / "image" / "kodim03" / "PE-IGA" / "metrics.json")


def _config(**train) -> dict:
    return {
        "tasks": {
            "image": {
                "items": ["a", "b"],
                "architectures": ["PE"],
                "methods": ["vanilla", "IGA"],
                "settings": {"train": {"seed": 7, "iterations": 10}},
                "overrides": {"a/*": {"train": train}} if train else {},
            }
        }
    }


def test_seeds_expand_a_configuration_into_one_cell_per_seed():
    config = _config(seeds=[1, 2, 3])
    cells = enumerate_cells(config, "image")
    assert [c.id for c in cells if c.item == "a" and c.method == "IGA"] == [
        "image/a/PE-IGA/s1",
        "image/a/PE-IGA/s2",
        "image/a/PE-IGA/s3",
    ]
    assert [c.id for c in cells if c.item == "b"] == ["image/b/PE-vanilla/s7", "image/b/PE-IGA/s7"]  # train.seed
    settings = [resolve_settings(config, c) for c in cells if c.item == "a" and c.method == "IGA"]
    assert [s["train"] for s in settings] == [{"seed": s, "iterations": 10} for s in (1, 2, 3)]  # no seeds list
    assert len({json.dumps(s, sort_keys=True) for s in settings}) == 3  # each replicate its own settings
    with pytest.raises(ConfigError, match="seed 7 is not among"):
        resolve_settings(config, Cell("image", "a", "PE", "IGA", 7))
    # a single seed: the replicate's settings are those of the configuration
    assert resolve_settings(_config(), Cell("image", "a", "PE", "IGA", 7))["train"] == {"seed": 7, "iterations": 10}


def test_nerf_seeds_live_under_run():
    config = {
        "tasks": {
            "nerf": {
                "items": ["procedural"],
                "architectures": ["NeRF"],
                "methods": ["IGA"],
                "settings": {"run": {"seeds": [3, 4]}},
            }
        }
    }
    cells = enumerate_cells(config, "nerf")
    assert [c.seed for c in cells] == [3, 4]
    assert resolve_settings(config, cells[1])["run"] == {"seed": 4}


@pytest.mark.parametrize(
    "seeds, says",
    [
        ([], "train.seeds=[]: must list at least one seed"),
        ([1, 1], "train.seeds=[1, 1]: seeds must be unique"),
        (["1"], "train.seeds=['1']: Input should be a valid integer"),
        ([-2], "train.seeds=[-2]: seeds must be >= 0"),
        (5, "train.seeds=5: Input should be a valid list"),
    ],
)
def test_bad_seed_lists_are_rejected_with_the_key_and_value(seeds, says):
    with pytest.raises(ConfigError, match="tasks.image cell a/PE-vanilla: ") as exc:
        enumerate_cells(_config(seeds=seeds), "image")
    assert says in str(exc.value)


def test_collect_writes_one_row_per_seed(tmp_path):
    files = []
    for seed, psnr in ((1, 30.0), (2, 31.0)):
        d = Cell("image", "a", "PE", "IGA", seed).dir(tmp_path)
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"psnr": psnr, "ssim": 0.9}))
        files.append(str(d / "metrics.json"))
    out = tmp_path / "long.csv"
    args = ["collect", "--task", "image", "--dataset", "embedded", "--preset", "t", "--metrics", "psnr"]
    assert main(args + ["--out", str(out)] + files) == 0
    rows = list(csv.DictReader(open(out)))
    assert [(r["seed"], r["value"], r["cell"]) for r in rows] == [
        ("1", "30.0", "image/a/PE-IGA/s1"),
        ("2", "31.0", "image/a/PE-IGA/s2"),
    ]


def _long(values: dict) -> list[dict]:
    """Long-form rows: {(method, seed): psnr} on one embedded item, architecture PE."""
    return [
        {
            "preset": "t",
            "task": "image",
            "dataset": "embedded",
            "item": "a",
            "metric": "psnr",
            "architecture": "PE",
            "method": m,
            "seed": s,
            "value": v,
            "note": "",
            "cell": f"image/a/PE-{m}/s{s}",
        }
        for (m, s), v in values.items()
    ]


def test_a_table_shows_mean_std_n_and_marks_a_gap_within_noise(tmp_path):
    iga, fr = [30.0, 30.4, 29.8], [29.9, 30.1, 30.0]  # IGA leads by 0.07, its std is 0.31
    rows = _long({**{("IGA", s): v for s, v in zip((1, 2, 3), iga)}, **{("FR", s): v for s, v in zip((1, 2, 3), fr)}})
    write_table(TABLES["table6_image_psnr"], rows, tmp_path, "T")
    md = (tmp_path / "table6_image_psnr.md").read_text()
    mean, std = statistics.mean(iga), statistics.stdev(iga)  # sample std (ddof 1)
    assert f"{mean:.2f} ± {std:.2f} (n=3){replicates.NOISE_MARK}" in md
    assert replicates.NOISE_RULE in md and replicates.SPREAD_INTRO in md
    assert r"$\pm$" in (tmp_path / "table6_image_psnr.tex").read_text()
    got = {r["method"]: r for r in csv.DictReader(open(tmp_path / "table6_image_psnr.csv")) if r["item"] == "a"}
    assert float(got["IGA"]["value"]) == pytest.approx(mean) and float(got["IGA"]["std"]) == pytest.approx(std)
    assert got["IGA"]["n"] == "3" and got["IGA"]["within_noise"] == "1" and got["FR"]["within_noise"] == ""
    # a clear lead is not marked
    rows = _long(
        {**{("IGA", s): v + 2 for s, v in zip((1, 2, 3), iga)}, **{("FR", s): v for s, v in zip((1, 2, 3), fr)}}
    )
    t = build_table(TABLES["table6_image_psnr"], rows)
    assert set(t[t.method == "IGA"].within_noise) == {0}


def test_a_single_seed_table_shows_plain_values(tmp_path):
    write_table(TABLES["table6_image_psnr"], _long({("IGA", 4096): 31.0, ("FR", 4096): 30.0}), tmp_path, "T")
    md = (tmp_path / "table6_image_psnr.md").read_text()
    assert "**31.00**" in md and "±" not in md and "(n=" not in md and replicates.NOISE_MARK not in md
    got = list(csv.DictReader(open(tmp_path / "table6_image_psnr.csv")))
    assert {r["n"] for r in got} == {"1"} and {r["std"] for r in got} == {""}


def test_item_average_has_a_spread_only_when_the_items_share_their_seeds():
    rows = _long({("IGA", 1): 30.0, ("IGA", 2): 31.0})
    rows += [dict(r, item="b", value=r["value"] + 1) for r in rows]
    avg = build_table(TABLES["table1_image_average"], rows)
    assert avg.iloc[0]["n"] == 2 and avg.iloc[0]["std"] == pytest.approx(statistics.stdev([30.5, 31.5]))
    mixed = rows[:2] + [dict(rows[2], seed=9)]  # item b has one other seed
    avg = build_table(TABLES["table1_image_average"], mixed).iloc[0]
    assert avg["value"] == pytest.approx((30.5 + 31.0) / 2) and avg["std"] == "" and "seeds differ" in avg["note"]


def test_table4_reduces_seeds_and_marks_iga_within_noise():
    rows = []
    for method, vals in (("vanilla", [28.0, 28.1]), ("IGA", [29.0, 29.6]), ("IGA-RSI", [29.3, 29.4])):
        for seed, v in zip((1, 2), vals):
            for metric, value in (("psnr", v), ("sampling", {"IGA": "slr", "IGA-RSI": "rsi"}.get(method))):
                if value is not None:
                    rows.append(
                        {
                            "item": "kodim03",
                            "architecture": "PE",
                            "method": method,
                            "metric": metric,
                            "seed": seed,
                            "value": value,
                            "note": "",
                            "cell": f"image_ablation/kodim03/PE-{method}/s{seed}",
                        }
                    )
    out = build_table4(rows, (["kodim03"], ["PE"], ["vanilla", "IGA", "IGA-RSI"]), "kodak")
    slr = next(r for r in out if r["method"] == "IGA-SLR" and r["item"] == "kodim03")
    assert slr["value"] == pytest.approx(29.3) and slr["n"] == 2 and slr["within_noise"] == 1
    assert slr["std"] == pytest.approx(statistics.stdev([29.0, 29.6]))
