"""Models (FR merge, BN placements), samplers, the trainer's resume, and config errors."""

import json

import pytest
import torch

from iga.adjust import GroupSampler, IGAAdjuster, build_adjuster
from iga.cells import Cell, resolve_settings
from iga.configs import AdjusterConfig, ConfigError, FRConfig, ModelConfig, OptimConfig, TrainConfig, validate
from iga.grouping import chunk_groups, interval_groups, patch_groups
from iga.models import FourierLinear, build_model
from iga.models.mlp import Sine
from iga.train import Batch, Trainer, lr_factor
from iga.workflow_config import validate_config


# --- models -----------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["ReLU", "PE", "SIREN"])
def test_fr_merge_gives_identical_outputs(arch):
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(
            architecture=arch,
            hidden_features=32,
            technique="fr",
            fr=FRConfig(low_freqs=8, high_freqs=8, phases=4, alpha=0.05),
        )
    )
    assert any(isinstance(m, FourierLinear) for m in model.modules())
    merged = model.merged()
    assert not any(isinstance(m, FourierLinear) for m in merged.modules())
    x = torch.rand(50, 2) * 2 - 1
    assert torch.allclose(model(x), merged(x), atol=1e-5)


def test_fr_bases_follow_the_reference_layout():
    fr = FourierLinear(16, 4, FRConfig(low_freqs=2, high_freqs=3, phases=4, alpha=0.5))
    assert fr.bases.shape == ((2 + 3) * 4, 16)
    assert torch.allclose(fr.bases.abs().max(), torch.tensor(0.5), atol=1e-3)
    assert fr.bases[0, 0] == pytest.approx(0.5 * torch.cos(torch.tensor(0.5 * -2 * torch.pi)).item(), abs=1e-5)


@pytest.mark.parametrize(
    "arch,placement,expected",
    [
        ("ReLU", "linear_act_bn", [torch.nn.Linear, torch.nn.ReLU, torch.nn.BatchNorm1d]),
        ("PE", "linear_bn_act", [torch.nn.Linear, torch.nn.BatchNorm1d, torch.nn.ReLU]),
        ("SIREN", "sine_bn", [torch.nn.Linear, None, torch.nn.BatchNorm1d, Sine]),
    ],
)
def test_bn_placements_build_and_train(arch, placement, expected):
    torch.manual_seed(0)
    model = build_model(ModelConfig(architecture=arch, hidden_features=32, technique="bn", bn_placement=placement))
    first = list(model.net)[: len(expected)]
    for mod, typ in zip(first, expected):
        if typ is not None:
            assert isinstance(mod, typ)
    x = torch.rand(256, 2) * 2 - 1
    y = torch.sin(3 * x).sum(1, keepdim=True).repeat(1, 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(60):
        loss = ((model(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bn_placement_must_fit_the_architecture():
    with pytest.raises(ConfigError, match="bn_placement 'sine_bn' does not fit architecture ReLU"):
        validate(ModelConfig, {"architecture": "ReLU", "technique": "bn", "bn_placement": "sine_bn"})


# --- samplers -----------------------------------------------------------------------------
def test_slr_picks_the_largest_residual_of_every_group():
    r = torch.randn(7, 9, 3)
    idx = GroupSampler("slr").select(r)
    assert torch.equal(idx, r.abs().sum(-1).argmax(1))


def test_rsi_keeps_its_choice_and_ri_changes_it():
    g = torch.Generator().manual_seed(0)
    rsi = GroupSampler("rsi", g)
    a, b = rsi.select(torch.randn(50, 16, 3)), rsi.select(torch.randn(50, 16, 3))
    assert torch.equal(a, b)
    ri = GroupSampler("ri", torch.Generator().manual_seed(0))
    c, d = ri.select(torch.randn(50, 16, 3)), ri.select(torch.randn(50, 16, 3))
    assert not torch.equal(c, d)
    assert torch.equal(GroupSampler("centre").select(torch.randn(4, 9, 1)), torch.full((4,), 4))


def test_official_quirk_samples_every_groups_argmax_in_every_group():
    inputs = torch.arange(4 * 5 * 2, dtype=torch.float32).reshape(4, 5, 2)
    outputs = torch.zeros(4, 5, 3)
    targets = torch.zeros(4, 5, 3)
    targets[torch.arange(4), torch.tensor([1, 3, 0, 2])] = 1.0
    per_group = IGAAdjuster(AdjusterConfig(kind="iga", end=2)).sample(inputs, outputs, targets)
    quirk = IGAAdjuster(AdjusterConfig(kind="iga", end=2, official_indexing_quirk=True)).sample(
        inputs, outputs, targets
    )
    assert per_group.shape == (4, 2) and quirk.shape == (4, 4, 2)
    assert torch.equal(per_group, inputs[torch.arange(4), torch.tensor([1, 3, 0, 2])])
    # group j's "sample" holds the argmax positions of ALL groups, taken inside group j
    for j in range(4):
        assert torch.equal(quirk[j], inputs[j, torch.tensor([1, 3, 0, 2])])


def test_unknown_sampling_is_rejected_by_name():
    with pytest.raises(ConfigError, match="sampling='largest'"):
        GroupSampler("largest")
    with pytest.raises(ConfigError, match="adjuster.sampling='largest'"):
        validate(AdjusterConfig, {"sampling": "largest"}, "adjuster.")


# --- grouping -----------------------------------------------------------------------------
def test_grouping_layouts_and_errors():
    g = patch_groups(4, 6, 2)
    assert g.shape == (6, 4) and g[0].tolist() == [0, 1, 6, 7] and g[1].tolist() == [2, 3, 8, 9]
    assert interval_groups(12, 4)[2].tolist() == [8, 9, 10, 11]
    full, rest = chunk_groups(10, 4)
    assert full.shape == (2, 4) and rest.tolist() == [8, 9]
    with pytest.raises(ConfigError, match="group_size=5 must divide .* n=12"):
        interval_groups(12, 5)
    with pytest.raises(ConfigError, match="patch size 3x3 must divide the image size 4x6"):
        patch_groups(4, 6, 3)


# --- trainer ------------------------------------------------------------------------------
class ToyTask:
    score_name = "psnr"

    def __init__(self, crash_at=None):
        torch.manual_seed(3)
        x = torch.linspace(-1, 1, 64).reshape(16, 4, 1)
        self._batch = Batch(x, torch.sin(6 * x).repeat(1, 1, 2))
        self.crash_at = crash_at

    def batch(self, step, generator):
        if self.crash_at is not None and step == self.crash_at:
            raise KeyboardInterrupt("simulated kill")
        return self._batch

    def step_metrics(self, step, batch_mse):
        return {"psnr": -10 * torch.log10(torch.tensor(batch_mse)).item()}

    def evaluate(self, model, step):
        return None


def _train(tmp, crash_at=None, resume=True):
    torch.manual_seed(0)
    model = build_model(ModelConfig(architecture="SIREN", in_features=1, out_features=2, hidden_features=16))
    gen = torch.Generator().manual_seed(5)
    adj = build_adjuster(AdjusterConfig(kind="iga", end=4, sampling="ri"), gen)  # RI uses the generator
    tr = Trainer(
        model,
        ToyTask(crash_at),
        adj,
        OptimConfig(lr=1e-3, schedule="step", step_size=15),
        TrainConfig(iterations=40, checkpoint_every=10, progress=False),
        tmp,
        generator=gen,
        fingerprint="f1",
    )
    return tr, tr.fit(resume=resume)


def test_interrupt_and_resume_reproduces_the_uninterrupted_run(tmp_path):
    _, ref = _train(tmp_path / "ref")
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "cut", crash_at=25)
    assert json.loads((tmp_path / "cut" / "train_log.jsonl").read_text().splitlines()[-1])["step"] >= 19
    tr, res = _train(tmp_path / "cut")
    assert res.best_score == ref.best_score and res.best_step == ref.best_step
    for k in ref.best_state:
        assert torch.equal(res.best_state[k], ref.best_state[k])
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut" / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(40))  # no duplicated or missing log lines after the resume
    ref_log = (tmp_path / "ref" / "train_log.jsonl").read_text().splitlines()
    cut_log = (tmp_path / "cut" / "train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["loss"] for line in ref_log] == [json.loads(line)["loss"] for line in cut_log]


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    _train(tmp_path)
    torch.manual_seed(0)
    model = build_model(ModelConfig(architecture="SIREN", in_features=1, out_features=2, hidden_features=16))
    tr = Trainer(
        model,
        ToyTask(),
        None,
        OptimConfig(lr=1e-3),
        TrainConfig(iterations=5, progress=False),
        tmp_path,
        fingerprint="other",
    )
    assert tr.try_resume() is False


def test_step_schedule_stops_after_max_steps():
    cfg = OptimConfig(schedule="step", step_size=3000, gamma=0.1, max_steps_of_schedule=3100)
    assert lr_factor(cfg, 2999, 10000) == 1.0
    assert lr_factor(cfg, 3000, 10000) == pytest.approx(0.1)
    assert lr_factor(cfg, 9999, 10000) == pytest.approx(0.1)  # the official scheduler stops at 3100
    assert lr_factor(OptimConfig(schedule="exponential", final_factor=0.1), 100, 200) == pytest.approx(0.1**0.5)


# --- config errors ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "cls,data,match",
    [
        (OptimConfig, {"lr": -1e-3}, "lr=-0.001: Input should be greater than 0"),
        (ModelConfig, {"architecture": "Tanh"}, r"architecture='Tanh': Input should be 'ReLU', 'PE' or 'SIREN'"),
        (AdjusterConfig, {"end": 0}, "end=0: Input should be greater than or equal to 1"),
        (TrainConfig, {"iterations": 10, "colour": 1}, r"unknown key 'colour'; allowed: \[.*'iterations'"),
        (OptimConfig, {"schedule": "cosine"}, "schedule='cosine': Input should be 'constant', 'step' or 'exponential'"),
    ],
)
def test_invalid_settings_name_the_value(cls, data, match):
    with pytest.raises(ConfigError, match=match):
        validate(cls, data)


def test_iga_end_larger_than_groups_is_rejected_with_the_allowed_range():
    adj = IGAAdjuster(AdjusterConfig(kind="iga", end=10))
    model = build_model(ModelConfig(hidden_features=8))
    x, y = torch.rand(6, 3, 2), torch.rand(6, 3, 3)
    with pytest.raises(ConfigError, match=r"end=10 must be smaller than the number of groups G=6 \(allowed: 1..5\)"):
        adj.loss(model, x, model(x.reshape(-1, 2)).reshape(6, 3, 3), y)


def test_cells_resolve_in_order_and_validate():
    config = {
        "preset": "t",
        "tasks": {
            "image": {
                "items": ["kodim01", "kodim02"],
                "architectures": ["ReLU", "PE"],
                "methods": ["vanilla", "IGA", "IGA-RSI"],
                "settings": {"optim": {"lr": 1e-3}, "adjuster": {"end": 20}},
                "variants": {"RSI": {"adjuster": {"sampling": "rsi"}}},
                "overrides": {"*-IGA*": {"optim": {"lr": 5e-3}}, "kodim02/PE-IGA": {"adjuster": {"end": 7}}},
            }
        },
    }
    s = resolve_settings(config, Cell("image", "kodim02", "PE", "IGA", 4096))
    assert s["optim"]["lr"] == 5e-3 and s["adjuster"]["end"] == 7 and s["adjuster"]["kind"] == "iga"
    s = resolve_settings(config, Cell("image", "kodim01", "PE", "IGA-RSI", 4096))
    assert s["adjuster"]["sampling"] == "rsi" and s["adjuster"]["end"] == 20
    assert resolve_settings(config, Cell("image", "kodim01", "ReLU", "vanilla", 4096))["optim"]["lr"] == 1e-3
    validate_config(config)
    config["tasks"]["image"]["overrides"]["ReLU-vanilla"] = {"optim": {"lr": 0}}
    with pytest.raises(
        ConfigError,
        match=r"cell image/kodim0[12]/ReLU-vanilla/s4096 \(and 1 more: .*\): optim.lr=0: Input should be greater",
    ):
        validate_config(config)
    with pytest.raises(ConfigError, match="variant 'XYZ'"):
        resolve_settings(config, Cell("image", "kodim01", "PE", "IGA-XYZ", 4096))
    with pytest.raises(ConfigError, match="method='GD'"):
        resolve_settings(config, Cell("image", "kodim01", "PE", "GD", 4096))
    assert (
        validate(AdjusterConfig, resolve_settings(config, Cell("image", "kodim01", "PE", "IGA", 4096))["adjuster"]).kind
        == "iga"
    )
