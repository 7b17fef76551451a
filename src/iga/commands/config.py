"""`iga config-check` and `iga config-schema`: the workflow config's typed model from the command line."""

from __future__ import annotations

import sys
from pathlib import Path


def load_config(files) -> dict:
    """config.yaml and overlays merged as Snakemake merges --configfile (dicts recursively)."""
    import yaml

    from ..cells import deep_merge

    config: dict = {}
    for f in files:
        config = deep_merge(config, yaml.safe_load(Path(f).read_text()) or {})
    return config


def _check(args) -> int:
    from ..workflow_config import validate_config

    # overlays may keep config.yaml's overrides for cells they do not have; their own must match a cell
    validate_config(load_config(args.files), base=load_config(args.files[:1]) if len(args.files) > 1 else None)
    print(f"ok: {' + '.join(args.files)}")
    return 0


def _schema(args) -> int:
    import yaml

    from ..workflow_config import json_schema

    text = yaml.safe_dump(json_schema(), sort_keys=False, allow_unicode=True, width=110)
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "config-check",
        help="validate config.yaml (+ overlays) and every cell's settings",
        description="Validate a workflow config as the workflow does before any job: every key, "
        "every cell's resolved settings, every override pattern.",
    )
    p.add_argument(
        "files",
        nargs="+",
        help="config.yaml, then overlays in order (e.g. presets/smoke.yaml); an override pattern written in an "
        "overlay must match one of the run's cells",
    )
    p.set_defaults(func=_check)
    p = sub.add_parser("config-schema", help="print (or write) the JSON schema generated from the config models")
    p.add_argument("--out", help="write the schema (YAML) here instead of standard output")
    p.set_defaults(func=_schema)
