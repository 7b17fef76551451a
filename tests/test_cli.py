"""The `iga` command line: every option explains itself; `iga --version` names both versions."""

import argparse
import subprocess
import sys

import pytest

import iga
from iga.cli import build_parser


def _undocumented(parser, prefix):
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for name, sub in a.choices.items():
                yield from _undocumented(sub, prefix + [name])
        elif not a.help and not isinstance(a, argparse._HelpAction):
            yield f"{' '.join(prefix)} {'/'.join(a.option_strings) or a.dest}"


def test_every_option_has_help():
    assert list(_undocumented(build_parser(), ["iga"])) == []


def test_version_names_the_package_and_results_versions():
    r = subprocess.run(
        [sys.executable, "-m", "iga.cli", "--version"], capture_output=True, text=True, timeout=120, check=False
    )
    assert r.returncode == 0
    assert r.stdout.strip() == f"iga-repro {iga.__version__} (results version {iga.__results_version__})"


def test_a_missing_input_file_is_one_line(tmp_path, capsys):
    from iga.cli import main

    missing = tmp_path / "nope.csv"
    assert main(["tables", "--long", str(missing), "--tables", "table1_image_average", "--out-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == f"iga tables: error: no such file: {missing} (-v: the traceback)"


def test_a_malformed_cell_id_is_refused_before_training(capsys):
    from iga.cli import main

    with pytest.raises(SystemExit):
        main(["train-image", "--settings", "{}", "--image", "x.png", "--out", "w", "--cell", "image/kodim03/PE-IGA"])
    assert "must be TASK/ITEM/ARCH-METHOD/sSEED" in capsys.readouterr().err
