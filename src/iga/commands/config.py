"""`iga config-check` and `iga config-schema`: the workflow config's typed model from the command line."""

from __future__ import annotations

import sys
from pathlib import Path


def _check(args) -> int:
    from ..workflow_config import load_config, validate_config

    # the last file's override patterns must match a cell; earlier layers' may name cells it drops
    validate_config(load_config(args.files), base=load_config(args.files[:-1]) if len(args.files) > 1 else None)
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
        help="config.yaml, then overlays in order (e.g. presets/smoke.yaml); an override pattern written in the "
        "last file must match one of the run's cells",
    )
    p.set_defaults(func=_check)
    p = sub.add_parser("config-schema", help="print (or write) the JSON schema generated from the config models")
    p.add_argument("--out", help="write the schema (YAML) here instead of standard output")
    p.set_defaults(func=_schema)
