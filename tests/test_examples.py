"""The README's "Use IGA in your own training loop" example runs as shipped and IGA does its job there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

import iga_in_your_loop as example  # noqa: E402


def test_the_example_runs_as_a_script():
    r = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "iga_in_your_loop.py"), "--steps", "20"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "final MSE after 20 steps: Adam" in r.stdout and "Adam + IGA" in r.stdout


def test_iga_fits_the_high_frequencies_faster_in_the_example():
    # seeded and on CPU: deterministic; IGA's balanced spectrum must beat plain Adam on this signal
    assert example.fit(True, 200) < 0.9 * example.fit(False, 200)
