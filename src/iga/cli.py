"""The `iga` command line: every workflow rule calls one of these sub-commands.

Sub-commands live in ``iga.commands.<module>``; each module defines ``register(subparsers)``
that adds its parsers and sets ``func`` (called with the parsed args, returns an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .configs import ConfigError

COMMAND_MODULES = (
    "iga.commands.data",
    "iga.commands.image",
    "iga.commands.report",
    "iga.commands.figures",
    "iga.commands.ablation",
    "iga.commands.toy",
    "iga.commands.occupancy",
    "iga.commands.nerf",
    "iga.commands.gpu",
    "iga.commands.config",
    "iga.commands.records",
)


def version_text() -> str:
    """The package version, and the results version: bumped when a code change alters results, it is
    a param of every training rule (docs/CLUSTER.md), so it says which cells a checkout would retrain."""
    from . import __results_version__, __version__

    return f"iga-repro {__version__} (results version {__results_version__})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iga", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument(
        "--version",
        action="version",
        version=version_text(),
        help="print iga-repro's version and results version, then exit",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a task whose commands are not written yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv=None) -> int:
    from .result_record import start_job

    start_job()  # a training command's job wall time counts from here (iga.result_record)
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"iga {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:  # a path given on the command line (or a rule's input) is absent
        if args.verbose:
            raise
        what = f"no such file: {exc.filename}" if exc.filename else str(exc)  # our own messages name the file
        print(f"iga {args.command}: error: {what} (-v: the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
