"""The one result record of a training cell (``provenance.json``), written by every task the same way.

One invocation of a training command = one job. The record holds what the cell is (id, settings,
seed), where and with what code it ran (device, git commit, code hash, versions) and what this job
measured:

* ``job_wall_time_s`` — the job from the command's start (:func:`start_job`, called by ``iga``'s
  ``main``; a direct ``run_cell`` call starts it itself) to the writing of the record: data loading,
  training, evaluation, outputs. It encloses the training loop, so it is never smaller than
  ``train_time_this_run_s`` (checked when the record is written);
* ``train_time_this_run_s`` / ``train_time_total_s`` — the training loop (steps, periodic
  evaluation, checkpoints) in this job / summed over every job that trained the cell (resumes);
* ``time_per_iteration_s`` — :data:`TIME_PER_ITERATION`, measured by :class:`StepTimer`;
* ``steps_this_run`` and ``trained_this_run`` — a job that found nothing to train (re-evaluated
  only) says so; its times are never those of the job that trained;
* peak RSS of the process and peak GPU memory (``torch.cuda.max_memory_allocated``, GPU jobs only);
* ``extra`` — per-run counters a component wants on record (e.g. eigen-solver fallbacks).

The cost table (:mod:`iga.report.cost`) reads only this record.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import iga

from .provenance import code_hash, device_description, git_commit, peak_memory, write_json

RECORD_FILE = "provenance.json"
RECORD_VERSION = 2
WARMUP_STEPS = 5
TIME_PER_ITERATION = (
    f"median wall time of one optimisation step (batch, forward, loss with the gradient adjuster, backward, "
    f"optimiser update) over the steps run by the job that trained the cell, skipping its first "
    f"{WARMUP_STEPS} steps as warm-up when it ran more than {WARMUP_STEPS}; evaluation, logging and "
    f"checkpointing are not part of a step"
)

_job_start: float | None = None


def start_job() -> None:
    """Mark the start of a command's job (``iga`` calls it first thing in ``main``)."""
    global _job_start
    _job_start = time.perf_counter()


def take_job_start() -> float:
    """The job's start (perf_counter), consumed: a later cell in the same process starts its own."""
    global _job_start
    t, _job_start = _job_start, None
    return time.perf_counter() if t is None else t


class StepTimer:
    """Wall time of each optimisation step of this job: ``start()`` before a step, ``stop()`` after it."""

    def __init__(self, synchronize: bool = False):
        self.synchronize = synchronize  # CUDA: wait for the step's kernels, or the time is the launch's
        self.durations: list[float] = []
        self._t: float | None = None

    def _sync(self) -> None:
        if self.synchronize:
            import torch

            torch.cuda.synchronize()

    def start(self) -> None:
        self._sync()
        self._t = time.perf_counter()

    def stop(self) -> None:
        if self._t is None:
            raise RuntimeError("StepTimer.stop() without start()")
        self._sync()
        self.durations.append(time.perf_counter() - self._t)
        self._t = None

    @property
    def steps(self) -> int:
        return len(self.durations)

    def time_per_iteration(self) -> float | None:
        """:data:`TIME_PER_ITERATION`; None when the job ran no step."""
        d = self.durations[WARMUP_STEPS:] if len(self.durations) > WARMUP_STEPS else self.durations
        return statistics.median(d) if d else None


@dataclass
class Training:
    """What a job's training loop measured (the trainer of each task fills it)."""

    steps_this_run: int
    iterations: int  # the cell's total after this job
    train_time_this_run_s: float
    train_time_total_s: float  # over every job that trained the cell (resumes)
    time_per_iteration_s: float | None
    resumed_from_step: int | None = None  # None: trained from step 0 (or nothing to train)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_timer(
        cls, timer: StepTimer, iterations: int, this_run_s: float, total_s: float, resumed_from_step: int | None = None
    ) -> Training:
        return cls(timer.steps, int(iterations), this_run_s, total_s, timer.time_per_iteration(), resumed_from_step)


def build_record(
    cell_id: str, settings: dict, seed: int | None, device: str, job_start: float, training: Training, **task_fields
) -> dict[str, Any]:
    """The record of one job; raises if its job wall time does not enclose its training loop."""
    import torch

    job_wall = time.perf_counter() - job_start
    if job_wall + 1e-6 < training.train_time_this_run_s:
        raise ValueError(
            f"job wall time {job_wall:.3f} s < training loop {training.train_time_this_run_s:.3f} s "
            f"for {cell_id}: the job clock must start before training (take_job_start first)"
        )
    now = _dt.datetime.now(_dt.timezone.utc)
    started = now - _dt.timedelta(seconds=job_wall)
    rec = {
        "record_version": RECORD_VERSION,
        "cell": cell_id,
        "settings": settings,
        "seed": seed,
        "device": device_description(device),
        "git": git_commit(),
        "code_hash": code_hash(),
        "iga_version": iga.__version__,
        "results_version": iga.__results_version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "host": platform.node(),
        # which job measured the numbers below: a table row names it
        "invocation": f"{started.isoformat(timespec='seconds')} pid {os.getpid()} on {platform.node()}",
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": now.isoformat(timespec="seconds"),
        "job_wall_time_s": round(job_wall, 3),
        "train_time_this_run_s": round(training.train_time_this_run_s, 3),
        "train_time_total_s": round(training.train_time_total_s, 3),
        "time_per_iteration_s": training.time_per_iteration_s,
        "time_per_iteration_definition": TIME_PER_ITERATION,
        "iterations": training.iterations,
        "steps_this_run": training.steps_this_run,
        "trained_this_run": training.steps_this_run > 0,
        "resumed_from_step": training.resumed_from_step,
        "peak_gpu_mb": None,
        "extra": dict(training.extra),
    }
    rec.update(peak_memory())
    rec.update(task_fields)
    return rec


def write_record(out_dir: Path, *args, **kwargs) -> dict[str, Any]:
    """:func:`build_record` → ``out_dir/provenance.json`` (atomic); returns the record."""
    rec = build_record(*args, **kwargs)
    write_json(rec, Path(out_dir) / RECORD_FILE)
    return rec
