"""`snakemake --lint` for the paper preset and each overlay; fails on any lint but the documented ones.

Accepted on purpose (docs/DEVELOPING.md › Lint):
* "Specify a conda environment or container for each rule": the project is one environment
  (pyproject.toml / environment.yml, `make setup`); every rule calls the same `iga` CLI.
* "Shell command directly uses variable DOWNLOAD_FLAGS / EXTRACT_FLAGS": download deadlines and
  extraction limits go into the shell text, not params, so editing them never reruns a finished,
  checksummed download (and through file dates every later step).
* "Mixed rules and functions in same snakefile": a task's small helpers (its cells' paths) stay beside
  the only rules that use them, inside the task's `if enabled(...)` block; shared ones are in common.smk.
"""
from __future__ import annotations

import re
import subprocess
import sys

ACCEPTED = (
    "Specify a conda environment or container for each rule.",
    "Shell command directly uses variable DOWNLOAD_FLAGS from outside of the rule",
    "Shell command directly uses variable EXTRACT_FLAGS from outside of the rule",
    "Mixed rules and functions in same snakefile.",
)
PRESETS = ([], ["presets/smoke.yaml"], ["presets/mini.yaml"])


def main() -> int:
    bad = []
    for overlay in PRESETS:
        cmd = [sys.executable, "-m", "snakemake", "--lint", "--configfile", "config.yaml", *overlay]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        out = res.stdout + res.stderr
        lints = re.findall(r"^    \* (.+?):?$", out, re.M)
        if res.returncode not in (0, 1) or (res.returncode == 1 and not lints):
            print(out[-3000:])
            return 1
        bad += [f"{' '.join(overlay) or 'config.yaml'}: {x}" for x in lints if not x.startswith(ACCEPTED)]
    for line in dict.fromkeys(bad):
        print("lint:", line)
    print(f"snakemake --lint: {len(set(bad))} lint(s) beyond the documented ones")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
