"""The nerfstudio plugin: registration, architecture, the IGA gradient (exact, float64), a short run."""

import json
import math
from importlib.metadata import entry_points

import numpy as np
import pytest
import torch

pytest.importorskip("nerfstudio")

from nerfstudio.cameras.rays import RayBundle  # noqa: E402
from nerfstudio.data.scene_box import SceneBox  # noqa: E402
from nerfstudio.field_components.field_heads import FieldHeadNames  # noqa: E402

from iga.configs import ConfigError, FRConfig  # noqa: E402
from iga.models import FourierLinear  # noqa: E402
from iga.nerf.cell_settings import NeRFAdjuster  # noqa: E402
from iga.nerf.field import NeRFPytorchEncoding, NeRFPytorchField, SampledPointOutputs  # noqa: E402
from iga.nerf.model import NeRFAdjusterConfig, NeRFPytorchModelConfig  # noqa: E402
from iga.nerf.procedural_scene import SceneSpec, generate_scene  # noqa: E402
from iga.ntk import _linear_layers, entk, jacobian, transformation_matrix  # noqa: E402

METHODS = {"iga-nerf": ("vanilla", "iga"), "iga-nerf-vanilla": ("none", "vanilla"), "iga-nerf-fr": ("fr", "vanilla")}


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def tiny_model(**kw):
    cfg = dict(net_width=24, net_depth=8, num_coarse_samples=6, num_importance_samples=6, use_lpips=False)
    cfg.update(kw)
    scene_box = SceneBox(aabb=torch.tensor([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]))
    return NeRFPytorchModelConfig(**cfg).setup(scene_box=scene_box, num_train_data=4)


def random_rays(n, gen):
    """Rays from a sphere of radius 4 through points near the origin (they cross the [2, 6] shell)."""
    origins = torch.randn(n, 3, generator=gen)
    origins = 4.0 * origins / origins.norm(dim=-1, keepdim=True)
    target = 0.3 * torch.randn(n, 3, generator=gen)
    dirs = target - origins
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    return RayBundle(
        origins=origins,
        directions=dirs,
        pixel_area=torch.full((n, 1), 1e-4),
        camera_indices=torch.zeros(n, 1, dtype=torch.long),
    )


# ---------------------------------------------------------------------------------------------- registry
def test_entry_points_register_the_methods():
    from nerfstudio.plugins.registry import discover_methods
    from nerfstudio.plugins.types import MethodSpecification

    methods, descriptions = discover_methods()
    for name, (technique, adjust) in METHODS.items():
        assert name in methods, f"{name} not discovered by nerfstudio"
        assert descriptions[name]
        model = methods[name].pipeline.model
        assert isinstance(model, NeRFPytorchModelConfig)
        assert (model.technique, model.adjuster.kind) == ({"vanilla": "none"}.get(technique, technique), adjust)
    eps = {ep.name: ep for ep in entry_points(group="nerfstudio.method_configs")}
    for name in METHODS:
        spec = eps[name].load()
        assert isinstance(spec, MethodSpecification) and spec.config.method_name == name


def test_method_defaults_are_nerf_pytorch_blender():
    from iga.nerf.method_configs import iga_nerf

    c = iga_nerf.config
    dm, m = c.pipeline.datamanager, c.pipeline.model
    assert dm.train_num_rays_per_batch == 1024
    assert (m.num_coarse_samples, m.num_importance_samples) == (64, 128)
    assert (m.net_depth, m.net_width, m.pos_frequencies, m.dir_frequencies) == (8, 256, 10, 4)
    assert m.background_color == "white" and dm.dataparser.alpha_color == "white"
    assert (dm.dataparser.downscale, dm.dataparser.testskip) == (2, 8)
    assert m.adjuster.end == 25 and m.adjuster.kind == "iga"
    assert c.optimizers["fields"]["optimizer"].lr == 5e-4
    assert c.viewer.quit_on_train_completion and c.vis == "tensorboard"


# ---------------------------------------------------------------------------------------------- architecture
def test_field_is_nerf_pytorch_architecture():
    field = NeRFPytorchField()
    # nerf-pytorch NeRF(D=8, W=256, input_ch=63, input_ch_views=27, skips=[4], use_viewdirs=True)
    assert sum(p.numel() for p in field.parameters()) == 595_844
    assert [layer.in_features for layer in field.pts_linears] == [63, 256, 256, 256, 256, 319, 256, 256]
    x = torch.randn(5, 3)
    enc = NeRFPytorchEncoding(3, 10)(x)
    ref = [x] + [f(x * 2.0**k) for k in range(10) for f in (torch.sin, torch.cos)]
    assert torch.allclose(enc, torch.cat(ref, dim=-1))
    assert NeRFPytorchEncoding(3, 4).get_out_dim() == 27


def test_fr_reparameterises_feature_layer_of_both_networks():
    model = tiny_model(technique="fr", fr=FRConfig(low_freqs=4, high_freqs=4, phases=2, alpha=0.05))
    for f in (model.field_coarse, model.field_fine):
        assert isinstance(f.feature_linear, FourierLinear)
        assert sum(isinstance(m, FourierLinear) for m in f.modules()) == 1
    assert isinstance(tiny_model().field_fine.feature_linear, torch.nn.Linear)


def test_lr_schedules():
    m = tiny_model()
    assert m.learning_rate(0) == pytest.approx(5e-4)
    assert m.learning_rate(500_000) == pytest.approx(5e-5)
    assert m.learning_rate(250_000) == pytest.approx(5e-4 * 0.1**0.5)
    assert tiny_model(lr_schedule="official").learning_rate(12345) == 5e-5


def test_lpips_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no weights there
    m = NeRFPytorchModelConfig(net_width=16, num_coarse_samples=4, num_importance_samples=4).setup(
        scene_box=SceneBox(aabb=torch.ones(2, 3)), num_train_data=1
    )
    assert m._lpips is None
    assert all("lpips" not in k for k in m.state_dict())


# ---------------------------------------------------------------------------------------------- IGA
@pytest.mark.parametrize("technique", ["none", "fr"])
def test_entk_of_sampled_points_uses_hooks_and_matches_jacobian(float64, technique):
    torch.manual_seed(0)
    field = NeRFPytorchField(
        depth=8, width=16, fr=FRConfig(low_freqs=4, high_freqs=4, phases=2, alpha=0.05) if technique == "fr" else None
    )
    net = SampledPointOutputs(field)
    assert _linear_layers(net) is not None, "all parameters in linear layers: the fast hook path"
    x = torch.cat([torch.randn(12, 3), torch.nn.functional.normalize(torch.randn(12, 3), dim=-1)], dim=-1)
    j = jacobian(net, x)
    assert j.shape == (12, sum(p.numel() for p in field.parameters()))
    torch.testing.assert_close(entk(net, x), j @ j.T, rtol=1e-10, atol=1e-12)


def test_iga_fine_loss_gradient_is_exact(float64):
    """Plugin: S from the eNTK of each ray's max-weight fine sample, fine loss = surrogate(S).

    Reference, written out independently: the sampled points from the fine pass's own weights,
    J of the sampled points by vmap (iga.ntk.jacobian) of sigmoid(4 raw outputs), S =
    transformation_matrix(J Jᵀ, end), and the fine-network gradient (2/numel)·J_rgbᵀ (S R) with
    J_rgb the Jacobian of the rendered rgb, one backward pass per output.
    """
    torch.manual_seed(0)
    n, end = 24, 5
    model = tiny_model(adjuster=NeRFAdjusterConfig(kind="iga", end=end))
    model.train()
    with torch.no_grad():  # a trained-looking density: at init every ray's max weight is its first sample
        for f in (model.field_coarse, model.field_fine):
            f.alpha_linear.weight.mul_(30.0)
    captured = {}
    sample_pdf, field_forward = model.sampler_pdf.forward, model.field_fine.forward

    def capture_samples(*a, **k):
        captured["samples"] = sample_pdf(*a, **k)
        return captured["samples"]

    def capture_field(ray_samples, *a, **k):
        out = field_forward(ray_samples, *a, **k)
        captured["density"] = out[FieldHeadNames.DENSITY]
        return out

    model.sampler_pdf.forward = capture_samples
    model.field_fine.forward = capture_field
    gen = torch.Generator().manual_seed(1)
    outputs = model(random_rays(n, gen))
    gt = torch.rand(n, 3, generator=gen)
    batch = {"image": gt}

    # sampled points = max-weight fine samples
    samples = captured["samples"]
    w = samples.get_weights(captured["density"])[..., 0]
    idx = w.argmax(dim=-1)
    rows = torch.arange(n)
    x_ref = torch.cat([samples.frustums.get_positions()[rows, idx], samples.frustums.directions[rows, idx]], -1)
    torch.testing.assert_close(outputs["iga_inputs"], x_ref.detach(), rtol=0, atol=0)
    assert (idx > 0).any() and len(set(idx.tolist())) > 1, "non-trivial sample choice"

    # S: plugin (hook eNTK) vs explicit vmap Jacobian
    field = model.field_fine

    class Explicit(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.f = field

        def forward(self, x):
            return torch.sigmoid(self.f.raw(x[:, :3], x[:, 3:]))

    J = jacobian(Explicit(), x_ref.detach())
    S_ref = transformation_matrix(J @ J.T, end)
    S_plugin = model.iga_transformation(outputs["iga_inputs"])
    torch.testing.assert_close(S_plugin, S_ref, rtol=1e-8, atol=1e-10)
    eye = torch.eye(n)
    assert (S_ref - eye).abs().max() > 1e-3, "S must differ from I for the check to mean anything"

    # gradient of the plugin's fine loss w.r.t. the fine network
    params = [p for p in field.parameters()]
    loss = model.get_loss_dict(outputs, batch)
    g_plugin = torch.autograd.grad(loss["rgb_loss_fine"], params, retain_graph=True)
    pred = outputs["rgb_fine"]  # white background, gt has no alpha: no blending
    R = (pred - gt).detach()
    SR = S_ref @ R
    g_ref = [torch.zeros_like(p) for p in params]
    for i in range(n):
        for c in range(3):
            gi = torch.autograd.grad(pred[i, c], params, retain_graph=True, allow_unused=True)
            for acc, g in zip(g_ref, gi):
                if g is not None:
                    acc.add_(g, alpha=2.0 * SR[i, c].item() / R.numel())
    flat = lambda gs: torch.cat([g.reshape(-1) for g in gs])
    torch.testing.assert_close(flat(g_plugin), flat(g_ref), rtol=1e-8, atol=1e-12)
    # ... and it is not the plain MSE gradient
    g_mse = torch.autograd.grad(((pred - gt) ** 2).mean(), params, retain_graph=True)
    assert (flat(g_mse) - flat(g_ref)).norm() > 1e-3 * flat(g_ref).norm()
    # the coarse loss stays plain MSE
    torch.testing.assert_close(loss["rgb_loss_coarse"], ((outputs["rgb_coarse"] - gt) ** 2).mean())
    # in eval mode no adjustment is computed
    model.eval()
    assert "iga_inputs" not in model(random_rays(4, gen))


def test_iga_end_must_be_below_rays():
    model = tiny_model(adjuster=NeRFAdjusterConfig(kind="iga", end=8))
    model.train()
    outputs = model(random_rays(8, torch.Generator().manual_seed(0)))
    with pytest.raises(ConfigError):
        model.get_loss_dict(outputs, {"image": torch.rand(8, 3)})


# ---------------------------------------------------------------------------------------------- data
def test_downscale_and_testskip(tmp_path):
    from PIL import Image

    from iga.nerf.data import IGABlenderDataParserConfig, box_downscale_rgba

    scene = tmp_path / "scene"
    generate_scene(scene, SceneSpec(size=16, n_train=2, n_val=1, n_test=5, samples_per_ray=48, supersample=1))
    full = IGABlenderDataParserConfig(data=scene, downscale=1, testskip=2).setup()
    half = IGABlenderDataParserConfig(data=scene, downscale=2, testskip=2).setup()
    f, h = full.get_dataparser_outputs("test"), half.get_dataparser_outputs("test")
    assert len(f.image_filenames) == 3  # frames 0, 2, 4
    assert float(h.cameras.fx[0]) == pytest.approx(float(f.cameras.fx[0]) / 2)
    assert int(h.cameras.width[0]) == 8 and float(h.cameras.cx[0]) == 4.0
    src = np.asarray(Image.open(f.image_filenames[0]))
    small = np.asarray(Image.open(h.image_filenames[0]))
    ref = np.round(src.astype(float).reshape(8, 2, 8, 2, 4).mean(axis=(1, 3)))
    assert np.array_equal(small, ref.astype(np.uint8))
    assert np.array_equal(box_downscale_rgba(src, 2), small)
    with pytest.raises(ConfigError):
        box_downscale_rgba(src[:15], 2)


def test_scene_without_test_split_is_evaluated_on_held_out_train_views(tmp_path):
    from iga.nerf.data import IGABlenderDataParserConfig

    scene = tmp_path / "scene"
    generate_scene(scene, SceneSpec(size=16, n_train=7, n_val=1, n_test=2, samples_per_ray=48, supersample=1))
    with_test = IGABlenderDataParserConfig(data=scene, downscale=1, testskip=1, holdout_every=3).setup()
    assert with_test.get_dataparser_outputs("test").metadata["eval_split"] == "test"  # the real split first
    assert len(with_test.get_dataparser_outputs("train").image_filenames) == 7
    for split in ("val", "test"):
        (scene / f"transforms_{split}.json").unlink()
    parser = IGABlenderDataParserConfig(data=scene, downscale=2, testskip=1, holdout_every=3).setup()
    test, train = parser.get_dataparser_outputs("test"), parser.get_dataparser_outputs("train")
    assert test.metadata["sources"] == ["train/r_0.png", "train/r_3.png", "train/r_6.png"]
    assert test.metadata["split_note"] == "held-out train views (every 3rd), no test split"
    assert [p.name for p in train.image_filenames] == ["r_1.png", "r_2.png", "r_4.png", "r_5.png"]
    assert len(parser.get_dataparser_outputs("val").image_filenames) == 3  # nerfstudio's eval split


def test_single_image_pixel_sampler():
    from iga.nerf.data import SingleImagePixelSamplerConfig

    sampler = SingleImagePixelSamplerConfig(num_rays_per_batch=50).setup()
    idx = sampler.sample_method(50, num_images=7, image_height=8, image_width=9)
    assert idx.shape == (50, 3)
    assert len(set(idx[:, 0].tolist())) == 1
    assert len({(int(a), int(b)) for a, b in idx[:, 1:]}) == 50, "pixels without replacement"
    assert idx[:, 1].max() < 8 and idx[:, 2].max() < 9


# ---------------------------------------------------------------------------------------------- a run
def test_short_offline_run_checkpoints_resumes_and_reports(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # offline: no AlexNet weights
    from iga.nerf.run import NeRFRunSettings, latest_checkpoint, run

    scene = tmp_path / "scene"
    generate_scene(scene, SceneSpec(size=16, n_train=4, n_val=1, n_test=2, samples_per_ray=64, supersample=1))
    out = tmp_path / "run"
    s = NeRFRunSettings(
        method="iga-nerf",
        data=str(scene),
        out=str(out),
        iterations=3,
        adjuster=NeRFAdjuster(kind="iga", end=4),
        device="cpu",
        downscale=1,
        testskip=1,
        num_rays=32,
        coarse_samples=6,
        fine_samples=6,
        net_width=32,
        checkpoint_every=100,
    )
    metrics = run(s)
    ckpt_dirs = list((out / "nerfstudio").rglob("nerfstudio_models"))
    assert len(ckpt_dirs) == 1 and latest_checkpoint(ckpt_dirs[0]) == 2
    m = json.loads((out / "metrics.json").read_text())
    assert math.isfinite(m["psnr"]) and math.isfinite(m["ssim"]) and m["n_views"] == 2
    assert m["evaluation"]["split"] == "test" and m["evaluation"]["note"] == ""  # the scene's own test split
    assert [v["source"] for v in m["per_view"]] == ["test/r_0.png", "test/r_1.png"]
    assert m["lpips"]["missing"] is True and "AlexNet" in m["lpips"]["reason"]
    assert "NaN" not in (out / "metrics.json").read_text()
    assert sorted(p.name for p in (out / "renders").iterdir()) == ["test_000.png", "test_001.png"]
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["seed"] == 4096 and prov["device"].startswith("cpu") and prov["resumed_from_step"] is None
    assert prov["nerfstudio_method"] == "iga-nerf" and prov["steps_this_run"] == 3
    assert metrics["psnr"] == m["psnr"]

    s.iterations = 5  # resume: two more steps from step 2
    run(s)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["resumed_from_step"] == 2 and prov["steps_this_run"] == 2
    assert latest_checkpoint(ckpt_dirs[0]) == 4

    s.adjuster = NeRFAdjuster(kind="iga", end=40)  # end >= rays per batch is refused before any work
    with pytest.raises(ConfigError):
        run(s)


def test_training_curve_is_read_back_from_nerfstudio_event_files(tmp_path):
    """iga.nerf.curve: loss and PSNR per logged step; a resumed job's later file wins for its steps."""
    import time

    from torch.utils.tensorboard import SummaryWriter

    from iga.nerf.curve import write_train_log

    for job, steps in enumerate([(0, 10, 20), (20, 30)]):
        w = SummaryWriter(log_dir=str(tmp_path), filename_suffix=f".job{job}")
        for s in steps:
            w.add_scalar("Train Loss", 1.0 / (s + 1) + job, s)
            w.add_scalar("Train Metrics Dict/psnr", 10.0 + s + job, s)
            w.add_scalar("Train Rays / Sec", 5.0, s)  # not part of the curve
        w.close()
        time.sleep(1.1)  # event file names start with their creation second
    n = write_train_log(tmp_path, tmp_path / "train_log.jsonl")
    rows = [json.loads(r) for r in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert n == 4 and [r["step"] for r in rows] == [0, 10, 20, 30]
    assert rows[2] == {"step": 20, "loss": pytest.approx(1 / 21 + 1), "psnr": pytest.approx(31.0)}  # job 1's
    assert set(rows[0]) == {"step", "loss", "psnr"}


def test_every_run_knob_reaches_nerfstudio_and_the_plugin_uses_its_defaults():
    """One declaration of the run knobs (iga.nerf.cell_settings.NeRFRun): the workflow's runs and the
    `ns-train` methods both go through method_configs.apply_run_knobs."""
    import copy

    from iga.nerf.cell_settings import NeRFRun
    from iga.nerf.method_configs import apply_run_knobs, iga_nerf, nerf_vanilla
    from iga.nerf.run import NeRFRunSettings

    defaults = NeRFRun()
    base = copy.deepcopy(nerf_vanilla.config)
    assert base.max_num_iterations == defaults.iterations and base.machine.seed == defaults.seed
    assert base.pipeline.datamanager.train_num_rays_per_batch == defaults.num_rays
    assert iga_nerf.config.pipeline.model.adjuster.kind == "iga"
    # NeRFRunSettings (a workflow run) starts from the same defaults
    run = NeRFRunSettings()
    assert all(getattr(run, k) == getattr(defaults, k) for k in NeRFRun.model_fields)
    other = {"lr_schedule": "official", "device": "cpu"}
    for knob, value in defaults.model_dump().items():
        if knob == "device":  # resolved against the machine by run.build_config, not a config field
            continue
        changed = NeRFRun(**{knob: other.get(knob, value + 1 if isinstance(value, int) else value)})
        a = repr(apply_run_knobs(copy.deepcopy(base), defaults, NeRFAdjuster()))
        b = repr(apply_run_knobs(copy.deepcopy(base), changed, NeRFAdjuster()))
        assert a != b, f"run.{knob} does not reach the nerfstudio config"
    # IGA's knobs keep the workflow's names in nerfstudio (--pipeline.model.adjuster.end), with its defaults
    model = iga_nerf.config.pipeline.model.adjuster
    assert (model.end, model.solver) == (NeRFAdjuster().end, NeRFAdjuster().solver)
    for knob, value in {"end": 30, "solver": "topk"}.items():
        m = apply_run_knobs(copy.deepcopy(iga_nerf.config), defaults, NeRFAdjuster(kind="iga", **{knob: value}))
        assert getattr(m.pipeline.model.adjuster, knob) == value, f"adjuster.{knob} does not reach nerfstudio"
    assert run.adjuster == NeRFAdjuster()


def test_the_plugin_reads_adjuster_end_from_the_nerfstudio_command_line():
    import tyro

    from iga.nerf.method_configs import iga_nerf

    config = tyro.cli(type(iga_nerf.config), default=iga_nerf.config, args=["--pipeline.model.adjuster.end", "30"])
    assert config.pipeline.model.adjuster.end == 30 and config.pipeline.model.adjuster.kind == "iga"


def test_lpips_disabled_in_config_is_reported_as_disabled_not_as_unavailable(tmp_path, monkeypatch):
    """lpips.enabled: false reaches NeRF cells as --no-lpips: LPIPS is not computed, whatever is on disk."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    from iga.cli import main

    scene = tmp_path / "scene"
    generate_scene(scene, SceneSpec(size=8, n_train=2, n_val=1, n_test=1, samples_per_ray=16, supersample=1))
    out = tmp_path / "run"
    args = ["nerf-train", "--method", "nerf", "--data", str(scene), "--out", str(out), "--iterations", "1"]
    args += ["--device", "cpu", "--downscale", "1", "--testskip", "1", "--num-rays", "16", "--coarse-samples", "4"]
    args += ["--fine-samples", "4", "--net-width", "16", "--no-lpips"]
    assert main(args) == 0
    lpips = json.loads((out / "metrics.json").read_text())["lpips"]
    assert lpips == {"missing": True, "reason": "LPIPS disabled in config (lpips.enabled: false)"}
