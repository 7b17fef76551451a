"""The one training loop, used by every task.

A task supplies grouped batches and metrics; the loop does the rest: optimiser and lr
schedule, the gradient adjuster, best-state tracking, a per-step JSONL log, a progress
bar, and checkpoints from which an interrupted run resumes to the same result.

What a job does with the ``checkpoint.pt`` it finds (decided when the Trainer is made, before a
task sets up state that follows the checkpoint):

* unfinished, same settings fingerprint: resumed; the step log is cut back to the checkpoint's step;
* finished (its step is the last iteration): removed and the cell retrains from scratch. The final
  checkpoint only outlives a run whose outputs were written, so a job that runs again was forced
  (``--forcerun``) or its inputs changed;
* unreadable (truncated, garbage, not a checkpoint of this model): moved aside to
  ``checkpoint.pt.corrupt-<UTC time>`` with a warning naming it, and the cell trains from scratch;
* of other settings: ignored (training starts afresh and overwrites it).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from .adjust import GradientAdjuster, VanillaAdjuster, mse
from .configs import OptimConfig, TrainConfig
from .provenance import atomic_file
from .result_record import StepTimer, Training

log = logging.getLogger(__name__)
_STATE_KEYS = (
    "step",
    "model",
    "optimizer",
    "adjuster",
    "generator",
    "torch_rng",
    "best_score",
    "best_step",
    "best_state",
    "last_metrics",
    "elapsed",
)


@dataclass
class Batch:
    inputs: torch.Tensor  # [G, P, in]
    targets: torch.Tensor  # [G, P, out]
    adjust: bool = True  # False: a plain MSE step (e.g. occupancy leftovers)


class Task(Protocol):
    score_name: str  # the metric whose maximum selects the best state

    def batch(self, step: int, generator: torch.Generator) -> Batch: ...

    def step_metrics(self, step: int, batch_mse: float) -> dict[str, float] | None:
        """Metrics of the pre-step state from this step's loss (full-batch tasks), or None."""

    def evaluate(self, model: nn.Module, step: int) -> dict[str, float] | None:
        """Periodic evaluation after ``step`` (e.g. once per epoch), or None."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def make_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr)
    return torch.optim.Adam(params, lr=cfg.lr)


def lr_factor(cfg: OptimConfig, step: int, total: int) -> float:
    """Multiplier of the base lr at ``step`` (0-based count of completed steps)."""
    if cfg.schedule == "step":
        s = step if cfg.max_steps_of_schedule is None else min(step, cfg.max_steps_of_schedule)
        return cfg.gamma ** (s // cfg.step_size)
    if cfg.schedule == "exponential":
        return cfg.final_factor ** (step / max(total, 1))
    return 1.0


@dataclass
class TrainResult:
    best_score: float
    best_step: int
    final_metrics: dict[str, float]
    best_state: dict[str, torch.Tensor]
    wall_time_s: float
    device: str
    steps: int
    history: list = field(default_factory=list)
    resumed_from_step: int | None = None  # None: this invocation trained from step 0
    train_time_this_run_s: float = 0.0  # training-loop time of this invocation (wall_time_s: all of them)
    timer: StepTimer = field(default_factory=StepTimer)  # this invocation's optimisation steps
    extra: dict[str, Any] = field(default_factory=dict)  # per-run counters for the record (e.g. solver fallbacks)

    def training(self) -> Training:
        """What the result record says about this invocation's training (iga.result_record)."""
        t = Training.from_timer(
            self.timer, self.steps, self.train_time_this_run_s, self.wall_time_s, self.resumed_from_step
        )
        t.extra.update(self.extra)
        return t


def _atomic_save(obj: Any, path: Path) -> None:
    with atomic_file(path, "wb") as f:
        torch.save(obj, f)


def move_aside_corrupt(path: Path, problem: str) -> Path:
    """Rename an unreadable checkpoint to ``<name>.corrupt-<UTC time>`` and say so (never deletes it)."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, aside)
    log.warning(
        "%s cannot be resumed (%s); moved it to %s and training this cell from scratch", path, problem[:200], aside
    )
    return aside


def load_problem(exc: BaseException) -> str:
    """One line saying why torch.load failed (its messages run over several lines)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


class Trainer:
    """``Trainer(model, task, adjuster, optim, train, workdir).fit()``."""

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        adjuster: GradientAdjuster | None,
        optim: OptimConfig,
        train: TrainConfig,
        workdir: Path | None = None,
        evaluate_every: int = 0,
        generator: torch.Generator | None = None,
        on_checkpoint: Callable[[int], None] | None = None,
        fingerprint: str = "",
    ):
        self.device = resolve_device(train.device)
        self.model = model.to(self.device)
        self.task = task
        self.adjuster = adjuster or VanillaAdjuster()
        self.vanilla = VanillaAdjuster()
        self.optim_cfg, self.cfg = optim, train
        self.workdir = Path(workdir) if workdir else None
        self.evaluate_every = evaluate_every
        self.generator = generator or torch.Generator().manual_seed(train.seed)
        self.optimizer = make_optimizer(self.model.parameters(), optim)
        self.on_checkpoint = on_checkpoint
        # identifies the settings a checkpoint belongs to: a checkpoint of other settings is never resumed
        self.fingerprint = fingerprint
        self.step = 0
        self.best_score = -math.inf
        self.best_step = -1
        self.best_state: dict[str, torch.Tensor] = {}
        self.last_metrics: dict[str, float] = {}
        self.elapsed = 0.0
        self.resumed_from: int | None = None
        self._found = self._vet_checkpoint()  # a resumable checkpoint's state, or None

    # --- checkpoints ---------------------------------------------------------------
    @property
    def ckpt_path(self) -> Path | None:
        return self.workdir / "checkpoint.pt" if self.workdir else None

    @property
    def log_path(self) -> Path | None:
        return self.workdir / "train_log.jsonl" if self.workdir else None

    def _state(self) -> dict:
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "adjuster": self.adjuster.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "best_score": self.best_score,
            "best_step": self.best_step,
            "best_state": self.best_state,
            "last_metrics": self.last_metrics,
            "elapsed": self.elapsed,
            "fingerprint": self.fingerprint,
        }

    def save_checkpoint(self) -> None:
        if self.ckpt_path is None:
            return
        _atomic_save(self._state(), self.ckpt_path)
        if self.on_checkpoint:
            self.on_checkpoint(self.step)

    def _vet_checkpoint(self) -> dict | None:
        """Read the checkpoint once; move aside an unreadable one, remove a finished one (module doc)."""
        path = self.ckpt_path
        if path is None or not path.exists():
            return None
        try:
            st = torch.load(path, map_location=self.device, weights_only=False)
            problem = self._checkpoint_problem(st)
        except Exception as exc:  # truncated zip, pickle garbage, a torch format error: all mean unreadable
            problem = load_problem(exc)
        if problem:
            move_aside_corrupt(path, problem)
            return None
        if st.get("fingerprint", "") != self.fingerprint:
            log.warning("%s belongs to other settings; starting afresh", path)
            return None
        if st["step"] >= self.cfg.iterations:
            path.unlink()
            log.info(
                "%s is of a finished run (step %d of %d): the job was forced or its inputs changed; "
                "retraining from scratch",
                path,
                st["step"],
                self.cfg.iterations,
            )
            return None
        return st

    def _checkpoint_problem(self, st: Any) -> str:
        """Why ``st`` is not a checkpoint this trainer can load ('' if it is)."""
        if not isinstance(st, dict):
            return f"not a checkpoint dict but {type(st).__name__}"
        missing = [k for k in _STATE_KEYS if k not in st]
        if missing:
            return f"missing {missing}"
        own = self.model.state_dict()
        theirs = st["model"]
        if (
            not isinstance(theirs, dict)
            or set(theirs) != set(own)
            or any(getattr(theirs[k], "shape", None) != own[k].shape for k in own)
        ):
            return "its model state does not fit this model"
        if not isinstance(st["step"], int) or st["step"] < 0:
            return f"step={st['step']!r}"
        return ""

    def try_resume(self) -> bool:
        st, self._found = self._found, None
        if st is None:
            return False
        self.model.load_state_dict(st["model"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.adjuster.load_state_dict(st["adjuster"])
        self.generator.set_state(st["generator"])
        torch.set_rng_state(st["torch_rng"])
        self.step, self.best_score, self.best_step = st["step"], st["best_score"], st["best_step"]
        self.best_state, self.last_metrics, self.elapsed = st["best_state"], st["last_metrics"], st["elapsed"]
        self.resumed_from = self.step
        log.info("resuming %s at step %d of %d", self.ckpt_path, self.step, self.cfg.iterations)
        self._truncate_log(self.step)
        return True

    def _truncate_log(self, step: int) -> None:
        """Keep only the log rows of steps before the checkpoint's (rows a killed run wrote after it, or a
        half-written last line, are dropped), so the resumed log has each step once, in order."""
        if self.log_path is None or not self.log_path.exists():
            return
        keep = []
        for ln in self.log_path.read_text().splitlines():
            try:
                rec = json.loads(ln)
            except json.JSONDecodeError:
                continue
            if (
                isinstance(rec, dict)
                and isinstance(rec.get("step"), int)
                and rec["step"] < step
                and (not keep or rec["step"] > keep[-1]["step"])
            ):
                keep.append(rec)
        with atomic_file(self.log_path) as f:
            f.writelines(json.dumps(rec) + "\n" for rec in keep)

    # --- the loop ------------------------------------------------------------------
    def _set_lr(self) -> float:
        lr = self.optim_cfg.lr * lr_factor(self.optim_cfg, self.step, self.cfg.iterations)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        return lr

    def _consider(self, metrics: dict[str, float] | None, state_fn) -> None:
        if not metrics:
            return
        self.last_metrics = dict(metrics)
        score = metrics.get(self.task.score_name)
        if score is not None and score >= self.best_score:  # ties: the later state, as the official code
            self.best_score, self.best_step = float(score), self.step
            self.best_state = state_fn()

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def fit(self, resume: bool = True) -> TrainResult:
        from tqdm.auto import tqdm

        if self.workdir:
            self.workdir.mkdir(parents=True, exist_ok=True)
        if not (resume and self.try_resume()) and self.log_path and self.log_path.exists():
            self.log_path.unlink()
        logf = open(self.log_path, "a") if self.log_path else None  # noqa: SIM115  closed in the finally below
        bar = tqdm(
            total=self.cfg.iterations,
            initial=self.step,
            disable=not self.cfg.progress,
            mininterval=1.0,
            dynamic_ncols=True,
            desc=getattr(self.task, "name", "train"),
        )
        elapsed_before = self.elapsed  # training time of earlier invocations (0 unless resumed)
        timer = StepTimer(synchronize=self.device.type == "cuda")
        t0 = time.perf_counter() - self.elapsed
        self.model.train()
        try:
            while self.step < self.cfg.iterations:
                timer.start()  # one step: batch → update (evaluation, log and checkpoint are not timed)
                lr = self._set_lr()
                batch = self.task.batch(self.step, self.generator)
                inputs = batch.inputs.to(self.device)
                targets = batch.targets.to(self.device)
                G, P = inputs.shape[:2]
                outputs = self.model(inputs.reshape(G * P, -1)).reshape(G, P, -1)
                plain = mse(outputs, targets)
                adjuster = self.adjuster if batch.adjust else self.vanilla
                loss = plain if adjuster is self.vanilla else adjuster.loss(self.model, inputs, outputs, targets)
                batch_mse = float(plain.detach())
                # metrics of the state *before* this update, as the official code reports them
                self._consider(self.task.step_metrics(self.step, batch_mse), self._snapshot)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                timer.stop()
                self.step += 1
                if self.evaluate_every and (self.step % self.evaluate_every == 0 or self.step == self.cfg.iterations):
                    self.model.eval()
                    with torch.no_grad():
                        metrics = self.task.evaluate(self.model, self.step)
                    self.model.train()
                    self._consider(metrics, self._snapshot)
                self.elapsed = time.perf_counter() - t0
                if logf and (self.step % self.cfg.log_every == 0 or self.step == self.cfg.iterations):
                    rec = {
                        "step": self.step - 1,
                        "loss": batch_mse,
                        "lr": lr,
                        "time_s": round(self.elapsed, 4),
                        "device": self.device.type,
                    }
                    rec.update({k: v for k, v in self.last_metrics.items()})
                    logf.write(json.dumps(rec) + "\n")
                score = self.last_metrics.get(self.task.score_name)
                bar.set_postfix(
                    loss=f"{batch_mse:.3g}",
                    refresh=False,
                    **({self.task.score_name: f"{score:.4g}"} if score is not None else {}),
                )
                bar.update(1)
                if self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                    if logf:  # the log reaches the disk before the checkpoint that vouches for it
                        logf.flush()
                        os.fsync(logf.fileno())
                    self.save_checkpoint()
        finally:
            bar.close()
            if logf:
                logf.close()
        return TrainResult(
            self.best_score,
            self.best_step,
            dict(self.last_metrics),
            self.best_state or self._snapshot(),
            self.elapsed,
            str(self.device),
            self.step,
            resumed_from_step=self.resumed_from,
            train_time_this_run_s=self.elapsed - elapsed_before,
            timer=timer,
        )
