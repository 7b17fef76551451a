"""The claims table: IGA against the best other method, here and in the paper, from the tables' CSVs."""

from pathlib import Path

import pandas as pd
import pytest

from iga.report import claims

ROOT = Path(__file__).resolve().parents[1]


def row(table, item, metric, arch, method, value, std="", n=1, paper=""):
    return {
        "table": table,
        "task": "image",
        "item": item,
        "metric": metric,
        "architecture": arch,
        "method": method,
        "value": value,
        "std": std,
        "n": n,
        "paper_value": paper,
        "scale": "TEST scale",
    }


def test_gap_verdict_noise_and_direction():
    t = pd.DataFrame(
        [
            row("1", "average", "psnr", "PE", "vanilla", 30.0, paper=31.0),
            row("1", "average", "psnr", "PE", "BN", 32.0, std=0.5, n=3, paper=33.5),
            row("1", "average", "psnr", "PE", "IGA", 32.3, std=0.4, n=3, paper=34.0),
            row("1", "average", "lpips", "PE", "vanilla", 0.10, paper=0.05),
            row("1", "average", "lpips", "PE", "IGA", 0.20, paper=0.04),
            row("6", "average", "psnr", "PE", "IGA", 32.3),  # repeats Table 1's average: dropped
            row("6", "average", "psnr", "PE", "BN", 32.0),
            row("6", "kodim01", "psnr", "PE", "IGA", 30.0),
            row("6", "kodim01", "psnr", "PE", "FR", 30.5),
            row("6", "kodim02", "psnr", "PE", "IGA", 30.0),  # no paper value for IGA, one for another method
            row("6", "kodim02", "psnr", "PE", "FR", 29.5, paper=31.0),
            row("1", "average", "ssim", "PE", "IGA", ""),  # no value here, none in the paper: no claim
            row("1", "average", "ssim", "PE", "BN", ""),
        ]
    )
    c = claims.build(t).set_index(["table", "item", "metric"])
    psnr = c.loc[("1", "average", "psnr")]
    assert psnr["best_other"] == "BN" and psnr["gap"] == pytest.approx(0.3)
    assert psnr["within_noise"] == 1  # 0.3 < max std 0.5
    assert psnr["paper_gap"] == pytest.approx(0.5)
    assert psnr["verdict"] == "agrees with the paper: IGA best (within noise)"
    lpips = c.loc[("1", "average", "lpips")]  # lower is better: IGA 0.20 vs 0.10 is behind, paper ahead
    assert lpips["gap"] == pytest.approx(-0.10) and lpips["paper_gap"] == pytest.approx(0.01)
    assert lpips["verdict"].startswith("differs from the paper: IGA not best")
    item = c.loc[("6", "kodim01", "psnr")]
    assert item["best_other"] == "FR" and item["verdict"] == "IGA not best; no paper value"
    assert ("6", "average", "psnr") not in c.index and ("1", "average", "ssim") not in c.index
    md = claims.render.markdown(claims.layout(claims.build(t)))
    assert "IGA is the best method in 2 of 4 comparisons here (1 of them within the seeds' noise)" in md
    assert "32.30 ± 0.40 (n=3)†" in md
    assert "nan" not in md  # a missing paper value prints as "—"


@pytest.mark.parametrize(
    "preset", [p.name for p in sorted((ROOT / "results").glob("*")) if (p / "tables/claims.csv").exists()]
)
def test_committed_claims_are_what_the_committed_tables_give(preset):
    tables = ROOT / "results" / preset / "tables"
    paths = sorted(p for p in tables.glob("table*.csv"))
    built = claims.build(claims.read_tables(paths))
    assert (tables / "claims.csv").read_text() == built.to_csv(index=False)


def test_a_tie_in_the_paper_is_iga_tied_best_and_both_sides_compare_the_same_methods():
    t = pd.DataFrame(
        [  # the paper's Table 9, PE armadillo: IGA and FR both 0.9979
            row("9", "armadillo", "iou", "PE", "FR", 0.91, paper=0.9979),
            row("9", "armadillo", "iou", "PE", "IGA", 0.95, paper=0.9979),
            # kodim01: our BN has no value; the paper's BN (the paper's best other) is not compared with
            row("6", "kodim01", "psnr", "PE", "FR", 30.0, paper=29.0),
            row("6", "kodim01", "psnr", "PE", "BN", "", paper=29.9),
            row("6", "kodim01", "psnr", "PE", "IGA", 31.0, paper=29.8),
        ]
    )
    c = claims.build(t).set_index(["table", "item"])
    tie = c.loc[("9", "armadillo")]
    assert tie["paper_gap"] == 0 and tie["verdict"] == "agrees with the paper: IGA best, paper: IGA tied best"
    k = c.loc[("6", "kodim01")]
    assert k["paper_best_other"] == "FR" and k["paper_gap"] == pytest.approx(0.8)
    assert k["verdict"] == "agrees with the paper: IGA best"
    assert "2 agree with the paper" in claims.summary(claims.build(t))
