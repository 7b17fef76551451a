"""Shared test set-up: the environment's own `iga` and `snakemake` are first on PATH.

`make test` runs `.venv/bin/python -m pytest` without activating the venv; workflow tests start
`snakemake`, whose rules call `iga`, as subprocesses, so both must resolve to this environment.
"""

import os
import sys
from pathlib import Path

_BIN = str(Path(sys.executable).parent)
if os.environ.get("PATH", "").split(os.pathsep)[0] != _BIN:
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")
