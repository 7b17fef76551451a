"""Metrics: values, and LPIPS reported missing (with a reason) instead of NaN or random-weight numbers."""

import json

import numpy as np
import pytest

from iga.metrics import LPIPS, LPIPS_OFFLINE, Missing, alexnet_weights_status, iou, psnr, psnr_from_mse, ssim, to_uint8


def test_psnr_and_ssim():
    rng = np.random.default_rng(0)
    a = rng.random((16, 24, 3))
    assert psnr_from_mse(0.01) == pytest.approx(20.0)
    assert psnr(a, a + 0.1) == pytest.approx(20.0)
    u = to_uint8(a)
    assert ssim(u, u) == pytest.approx(1.0)
    assert ssim(u, to_uint8(rng.random((16, 24, 3)))) < 0.5
    assert to_uint8(np.array([-0.5, 0.5, 1.7])).tolist() == [0, 127, 255]


def test_iou_identical_and_disjoint():
    v = np.zeros((4, 4, 4))
    v[:2] = 1
    assert iou(v, v) == 1.0
    assert iou(v, 1 - v) == 0.0
    assert iou(v, np.where(np.arange(4)[:, None, None] < 1, 1.0, 0.0) * np.ones((4, 4, 4))) == pytest.approx(0.5)


def test_lpips_without_weights_is_missing_with_the_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    lp = LPIPS()
    v = lp(np.zeros((8, 8, 3)), np.ones((8, 8, 3)))
    assert isinstance(v, Missing) and v.reason == LPIPS_OFFLINE  # short: it is printed in every table
    assert "not found" in capsys.readouterr().err  # the details go to the cell's log


def test_lpips_rejects_weights_with_the_wrong_hash(tmp_path):
    fake = tmp_path / "alexnet-owt-7be5be79.pth"
    fake.write_bytes(b"not the real weights")
    st = alexnet_weights_status(weights=fake)
    assert st["available"] is False and "expected prefix 7be5be79" in st["reason"]
    assert isinstance(LPIPS(weights=fake)(np.zeros((8, 8, 3)), np.zeros((8, 8, 3))), Missing)


def test_lpips_status_file_from_the_fetch_rule_is_honoured(tmp_path, capsys):
    status = tmp_path / "alexnet.status.json"
    status.write_text(json.dumps({"available": False, "reason": "could not fetch: URLError offline"}))
    assert LPIPS(status).status["reason"] == LPIPS_OFFLINE
    assert "could not fetch: URLError offline" in capsys.readouterr().err
    assert (
        LPIPS(disabled_reason="disabled in config")(np.zeros((2, 2, 3)), np.zeros((2, 2, 3))).reason
        == "disabled in config"
    )


def test_lpips_loads_verified_weights_into_the_alexnet_slices(tmp_path, monkeypatch):
    """The loading path with a weights file whose hash is accepted (here: a stand-in file whose
    prefix the test registers; the real run accepts only torchvision's 7be5be79 file)."""
    import hashlib

    import torch
    import torchvision

    import iga.metrics as m

    torch.manual_seed(0)
    path = tmp_path / "alexnet-owt-7be5be79.pth"
    state = torchvision.models.alexnet().state_dict()
    torch.save(state, path)
    monkeypatch.setattr(m, "ALEXNET_SHA256_PREFIX", hashlib.sha256(path.read_bytes()).hexdigest()[:8])
    lp = m.LPIPS(weights=path)
    a = np.random.default_rng(0).random((32, 32, 3))
    assert lp(a, a) == pytest.approx(0.0, abs=1e-6)
    assert lp(a, np.clip(a + 0.2, 0, 1)) > 0
    assert torch.equal(lp._net.net.slice1[0].weight, state["features.0.weight"])
    assert torch.equal(dict(lp._net.net.slice5.named_children())["10"].weight, state["features.10.weight"])
