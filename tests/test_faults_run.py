"""Issue #15, items 2, 3, 4 and 9, replayed as a hostile user would: what a training run does when
two trainers meet on one cell, after kill -9, with a corrupt checkpoint, under --forcerun, and with
pictures that are not 8-bit RGB. Each test names its item.

Training goes through the real CLI (`iga train-image`, as the rule runs it) on a 16x16 picture with
the tiny preset's settings; --forcerun goes through snakemake on a temporary copy of the workflow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from snakemake_runner import TINY, copy_workflow, run_local

ROOT = Path(__file__).resolve().parents[1]
CELL_ID = "image/pattern/PE-vanilla/s4096"

pytestmark = pytest.mark.timeout(600)


# --- helpers ------------------------------------------------------------------------------------
def tiny_settings(**train) -> dict:
    """The tiny preset's resolved settings of one image cell (as the workflow passes them)."""
    import yaml

    from iga.cells import Cell, deep_merge, resolve_settings

    config = deep_merge(yaml.safe_load((ROOT / "config.yaml").read_text()), yaml.safe_load(TINY.read_text()))
    settings = resolve_settings(config, Cell("image", "astronaut", "PE", "vanilla", 4096))
    settings["train"].update(train)
    return settings


def iga_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES",)}


def train_cmd(settings: dict, image: Path, out: Path) -> list:
    return [
        "iga",
        "train-image",
        "--settings",
        json.dumps(settings, sort_keys=True),
        "--image",
        str(image),
        "--no-lpips",
        "--out",
        str(out),
        "--cell",
        CELL_ID,
        "--threads",
        "1",
    ]


def train(settings: dict, image: Path, out: Path, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(train_cmd(settings, image, out), env=iga_env(), capture_output=True, text=True, timeout=400)
    if check:
        assert r.returncode == 0, r.stderr[-3000:]
    return r


def outcome(out: Path):
    """metrics.json and the step log without wall-clock times (what must not depend on interruptions)."""
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [json.loads(ln) for ln in (out / "train_log.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("time_s")
    return metrics, rows


def first_progress_step(text: str) -> int:
    m = re.search(r"(\d+)/(\d+) \[", text)
    assert m, text[-2000:]
    return int(m.group(1))


def wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 300) -> None:
    t0 = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"trainer ended before {what}:\n{proc.stderr.read()[-3000:]}")
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"no {what} after {timeout}s")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def picture(tmp_path_factory) -> Path:
    from PIL import Image

    y, x = np.mgrid[0:16, 0:16]
    path = tmp_path_factory.mktemp("faults") / "pattern.png"
    Image.fromarray(np.stack([x * 16, y * 16, (x + y) * 8], -1).astype(np.uint8)).save(path)
    return path


SHORT = dict(iterations=60, checkpoint_every=20)


@pytest.fixture(scope="module")
def reference(picture, tmp_path_factory):
    """An uninterrupted short run: what every interrupted or damaged run must end with."""
    out = tmp_path_factory.mktemp("faults") / "reference"
    train(tiny_settings(**SHORT), picture, out)
    return out, outcome(out)


# --- item 2: two trainers on one cell; a killed trainer; the log after resume ----------------------
def test_item2_second_trainer_exits_at_once_naming_the_holder_and_a_killed_holder_does_not_block(picture, tmp_path):
    out = tmp_path / "cell"
    first = subprocess.Popen(
        train_cmd(tiny_settings(iterations=100_000, checkpoint_every=50), picture, out),
        env=iga_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: (out / "checkpoint.pt").exists(), first, "checkpoint")
        log_before = (out / "train_log.jsonl").stat().st_size
        t0 = time.monotonic()
        second = train(tiny_settings(iterations=100_000, checkpoint_every=50), picture, out, check=False)
        assert second.returncode == 2, second.stderr[-2000:]
        assert time.monotonic() - t0 < 60  # at once: it did not wait for, or train beside, the first
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
        assert str(out) in lines[0] and f"pid {first.pid}" in lines[0], lines[0]
        assert first.poll() is None  # the first trainer goes on, alone
        assert (out / "train_log.jsonl").stat().st_size >= log_before
        first.send_signal(signal.SIGKILL)  # kill -9: the kernel drops its flock
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert (out / ".train.lock").exists()  # the file stays behind; the lock does not
    third = train(tiny_settings(**SHORT), picture, out, check=False)
    assert third.returncode == 0, third.stderr[-2000:]


def test_item2_resume_after_kill_rewrites_a_mangled_log_consistently(picture, reference, tmp_path):
    """kill -9 mid-run, then a log such as two writers leave it (duplicate, out-of-order and later rows,
    a half-written last line): the resumed run's log has each step once, in order, as uninterrupted."""
    ref_out, expected = reference
    out = tmp_path / "cell"
    settings = tiny_settings(**SHORT)
    # the checkpoint a killed run leaves: the reference's, taken back to an earlier step
    shutil.copytree(ref_out, out)
    (out / "metrics.json").unlink()
    mid = _checkpoint_at(settings, picture, tmp_path / "mid", step=40)
    shutil.copy(mid / "checkpoint.pt", out / "checkpoint.pt")
    rows = (ref_out / "train_log.jsonl").read_text().splitlines()
    mangled = rows[:30] + rows[10:20] + rows[45:50] + rows[30:55] + [rows[55][:17]]
    (out / "train_log.jsonl").write_text("\n".join(mangled))
    r = train(settings, picture, out)
    assert first_progress_step(r.stderr) == 40  # resumed, not restarted
    steps = [json.loads(ln)["step"] for ln in (out / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(60))
    assert outcome(out) == expected
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["resumed_from_step"] == 40
    assert 0 < prov["train_time_this_run_s"] <= prov["train_time_total_s"]


def _checkpoint_at(settings: dict, picture: Path, out: Path, step: int) -> Path:
    """A real unfinished checkpoint at ``step``: the same run stopped there, as a kill would leave it."""
    from iga.adjust import build_adjuster
    from iga.configs import validate
    from iga.models import build_model
    from iga.provenance import settings_fingerprint
    from iga.tasks.image import ImageCellSettings, ImageFittingTask, load_image
    from iga.train import Trainer, seed_everything

    cell = validate(ImageCellSettings, settings)
    model_cfg, adj_cfg, optim_cfg, train_cfg = cell.model, cell.adjuster, cell.optim, cell.train
    seed_everything(train_cfg.seed)
    task = ImageFittingTask(load_image(picture), cell.task.patch_size)
    model = build_model(model_cfg)
    gen = torch.Generator().manual_seed(train_cfg.seed)
    train_cfg.progress = False

    class Stop(Exception):
        pass

    def stop(s):
        if s == step:
            raise Stop

    tr = Trainer(
        model,
        task,
        build_adjuster(adj_cfg, gen),
        optim_cfg,
        train_cfg,
        out,
        generator=gen,
        fingerprint=settings_fingerprint(settings),
        on_checkpoint=stop,
    )
    with pytest.raises(Stop):
        tr.fit()
    return out


def test_item2_checkpoint_writes_use_unique_fsynced_temp_files(tmp_path, monkeypatch):
    from iga import provenance

    synced, names = [], []
    real_fsync = os.fsync
    monkeypatch.setattr(provenance.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    real_replace = os.replace
    monkeypatch.setattr(provenance.os, "replace", lambda a, b: (names.append(Path(a).name), real_replace(a, b)))
    from iga.train import _atomic_save

    _atomic_save({"a": 1}, tmp_path / "checkpoint.pt")
    _atomic_save({"a": 2}, tmp_path / "checkpoint.pt")
    assert torch.load(tmp_path / "checkpoint.pt")["a"] == 2
    assert len(set(names)) == 2 and all(str(os.getpid()) in n for n in names), names
    assert len(synced) == 4  # the file and its folder, each time
    with pytest.raises(RuntimeError), provenance.atomic_file(tmp_path / "checkpoint.pt", "wb"):
        raise RuntimeError("killed mid-write")
    assert torch.load(tmp_path / "checkpoint.pt")["a"] == 2  # the old file, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temp left behind


# --- item 3: a checkpoint that cannot be read -------------------------------------------------------
def _truncated(ref: Path) -> bytes:
    data = (ref / "checkpoint.pt").read_bytes()
    return data[: len(data) // 2]


def _wrong_format(ref: Path) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save({"step": 20, "weights": torch.zeros(3)}, buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    "damage",
    [_truncated, lambda ref: b"\x00garbage" * 100, _wrong_format],
    ids=["truncated", "garbage", "wrong-format"],
)
def test_item3_corrupt_checkpoint_is_moved_aside_and_the_cell_trains_from_scratch(picture, reference, tmp_path, damage):
    ref_out, expected = reference
    out = tmp_path / "cell"
    out.mkdir()
    bad = damage(ref_out)
    (out / "checkpoint.pt").write_bytes(bad)
    r = train(tiny_settings(**SHORT), picture, out)
    assert "Traceback" not in r.stderr
    aside = list(out.glob("checkpoint.pt.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == bad  # kept for a post-mortem, never deleted
    warning = [ln for ln in r.stderr.splitlines() if "cannot be resumed" in ln]
    assert warning and str(out / "checkpoint.pt") in warning[0] and str(aside[0]) in warning[0], r.stderr[-2000:]
    assert first_progress_step(r.stderr) == 0
    assert outcome(out) == expected
    assert json.loads((out / "provenance.json").read_text())["resumed_from_step"] is None


# --- item 4: --forcerun retrains from scratch ---------------------------------------------------------
def test_item4_forcerun_of_the_training_rule_retrains_from_scratch(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    cell = "astronaut/PE-vanilla/s4096"
    target = f"results/tiny/cells/image/{cell}/metrics.json"  # the cell's record (work/ has the rest)

    def smk(*args):
        return run_local(wf, "--configfile", str(TINY), *args)

    smk("--", target)
    cell_dir, log = wf / "work/tiny/image" / cell, wf / f"logs/tiny/image/{cell}.log"
    before = outcome(cell_dir)
    assert torch.load(cell_dir / "checkpoint.pt", weights_only=False)["step"] == 30  # the finished run's
    assert "Nothing to be done" in smk("--", target)
    out = smk("--forcerun", "train_image", "--", target)
    assert "rule train_image:" in out
    text = log.read_text()
    assert first_progress_step(text) == 0, text[-2000:]  # not "30/30": trained again from step 0
    assert "retraining from scratch" in text
    assert json.loads((cell_dir / "provenance.json").read_text())["resumed_from_step"] is None
    assert outcome(cell_dir) == before  # and, deterministic on CPU, to the same result


# --- item 9: pictures that are not 8-bit RGB ----------------------------------------------------------
def _png(path: Path, samples: np.ndarray, colour_type: int, bit_depth: int) -> Path:
    """A PNG written by the spec, each scanline with another filter (0-4), so the reader meets all."""
    h, w = samples.shape[:2]
    flat = samples.reshape(h, -1).astype(">u2" if bit_depth == 16 else np.uint8)
    rows = [np.frombuffer(r.tobytes(), np.uint8).astype(int) for r in flat]
    bpp = (samples.shape[2] if samples.ndim == 3 else 1) * bit_depth // 8
    raw, prev = b"", np.zeros_like(rows[0])
    for y, cur in enumerate(rows):
        kind, enc = y % 5, []
        for i, v in enumerate(cur):
            a = cur[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            else:
                pred = [0, a, b, (a + b) // 2][kind]
            enc.append((v - pred) % 256)
        raw += bytes([kind] + enc)
        prev = cur

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path


RNG = np.random.default_rng(7)
RGB16 = RNG.integers(0, 65536, (6, 7, 3))
ALPHA16 = RNG.integers(0, 65536, (6, 7, 1))
RGB8 = RNG.integers(0, 256, (6, 7, 3))
ALPHA8 = RNG.integers(0, 256, (6, 7, 1))


CASES = {  # name: (writer, expected RGB in [0, 1])
    "rgb8": (lambda p: _png(p, RGB8, 2, 8), RGB8 / 255),
    "rgba8": (lambda p: _png(p, np.concatenate([RGB8, ALPHA8], -1), 6, 8), RGB8 / 255),
    "gray8": (lambda p: _png(p, RGB8[..., 0], 0, 8), np.repeat(RGB8[..., :1], 3, -1) / 255),
    "gray_alpha8": (
        lambda p: _png(p, np.concatenate([RGB8[..., :1], ALPHA8], -1), 4, 8),
        np.repeat(RGB8[..., :1], 3, -1) / 255,
    ),
    "rgb16": (lambda p: _png(p, RGB16, 2, 16), RGB16 / 65535),
    "rgba16": (lambda p: _png(p, np.concatenate([RGB16, ALPHA16], -1), 6, 16), RGB16 / 65535),
    "gray16": (lambda p: _png(p, RGB16[..., 0], 0, 16), np.repeat(RGB16[..., :1], 3, -1) / 65535),
    "gray_alpha16": (
        lambda p: _png(p, np.concatenate([RGB16[..., :1], ALPHA16], -1), 4, 16),
        np.repeat(RGB16[..., :1], 3, -1) / 65535,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_item9_png_kinds_load_to_rgb_in_unit_range_alpha_dropped(tmp_path, name):
    from iga.tasks.image import load_image

    write, expected = CASES[name]
    img = load_image(write(tmp_path / f"{name}.png"))
    assert img.shape == (6, 7, 3) and img.dtype == np.float64
    np.testing.assert_array_equal(img, expected)


def test_item9_palette_png_loads_its_colours(tmp_path):
    from PIL import Image

    from iga.tasks.image import load_image

    im = Image.fromarray(RGB8.astype(np.uint8)).quantize(colors=16)
    im.save(tmp_path / "p.png")
    expected = np.asarray(im.convert("RGB")) / 255
    assert Image.open(tmp_path / "p.png").mode == "P"
    np.testing.assert_array_equal(load_image(tmp_path / "p.png"), expected)


def test_item9_eight_bit_rgb_loads_exactly_as_before(picture):
    """The Kodak case (8-bit RGB) is unchanged: the stored values / 255, nothing else."""
    from skimage import io

    from iga.tasks.image import load_image

    np.testing.assert_array_equal(load_image(picture), io.imread(picture)[..., :3].astype(np.float64) / 255.0)


def test_item9_sixteen_bit_gray_trains_to_a_real_psnr(tmp_path):
    """Issue: a 16-bit gray PNG trained against values up to 65535/255 and reported psnr -36.37."""
    path = _png(tmp_path / "g16.png", (np.mgrid[0:16, 0:16].sum(0) * 2048).astype(np.uint16), 0, 16)
    out = tmp_path / "cell"
    train(tiny_settings(**SHORT), path, out)
    assert json.loads((out / "metrics.json").read_text())["psnr"] > 10


@pytest.mark.parametrize(
    "content,reason",
    [
        (b"this is not a picture\n", "not a readable image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a readable image"),
    ],
)
def test_item9_a_non_image_is_a_one_line_error_naming_the_file_before_training(tmp_path, content, reason):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    out = tmp_path / "cell"
    r = train(tiny_settings(**SHORT), path, out, check=False)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and reason in lines[0], r.stderr
    assert not (out / "checkpoint.pt").exists() and not (out / "train_log.jsonl").exists()


def test_item9_truncated_png_is_a_clear_error(tmp_path):
    from iga.configs import ConfigError
    from iga.tasks.image import load_image

    good = _png(tmp_path / "rgb16.png", RGB16, 2, 16).read_bytes()
    for name, data in {
        "t16.png": good[: len(good) - 30],
        "t8.png": CASES["rgb8"][0](tmp_path / "x.png").read_bytes()[:60],
    }.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ConfigError, match=re.escape(str(tmp_path / name))):
            load_image(tmp_path / name)


# --- items 3 and 4 for NeRF runs (nerfstudio's own checkpoints) ------------------------------------------
def _nerf_ckpt(folder: Path, step: int, data: bytes | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{step:09d}.ckpt"
    if data is None:
        torch.save({"step": step, "pipeline": {}}, path)
    else:
        path.write_bytes(data)
    return path


def test_item3_nerf_corrupt_latest_checkpoint_is_moved_aside_and_an_older_one_resumed(tmp_path):
    from iga.nerf.run import resumable_checkpoint

    older = _nerf_ckpt(tmp_path, 99)
    bad = _nerf_ckpt(tmp_path, 199, b"PK\x03\x04 truncated")
    assert resumable_checkpoint(tmp_path, iterations=1000) == 99
    assert not bad.exists() and len(list(tmp_path.glob(f"{bad.name}.corrupt-*"))) == 1 and older.exists()


def test_item4_nerf_finished_checkpoint_is_not_resumed(tmp_path):
    from iga.nerf.run import resumable_checkpoint

    _nerf_ckpt(tmp_path, 999)
    assert resumable_checkpoint(tmp_path, iterations=1000) is None
    assert not list(tmp_path.glob("*.ckpt"))
    _nerf_ckpt(tmp_path, 499)
    assert resumable_checkpoint(tmp_path, iterations=1000) == 499  # unfinished: resumed
