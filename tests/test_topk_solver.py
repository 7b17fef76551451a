"""The top-k eigensolver behind transformation_matrix(solver="topk"|"auto"): S as float64 eigh's, on the
real eNTKs of this project's networks (small sizes; the large ones are in benchmarks/iga_group_scaling.py),
warm starts, fallbacks, the counts in the cell record, and the official fallbacks kept."""

import copy
from pathlib import Path

import pytest
import torch
import yaml

from iga.adjust import IGAAdjuster, build_adjuster
from iga.cells import Cell, cell_seeds, resolve_settings
from iga.configs import AdjusterConfig, ConfigError, ModelConfig, validate
from iga.grouping import patch_groups
from iga.models import build_model
from iga.ntk import AUTO_TOPK_MIN_GROUPS, TopkEigensolver, entk, transformation_matrix
from iga.tasks.image import coordinate_grid

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-4  # the bound on ‖S_topk − S_eigh64‖_F / ‖S_eigh64 − I‖_F


def s_error(S: torch.Tensor, K: torch.Tensor, end: int, **kw) -> float:
    ref = transformation_matrix(K.double(), end, solver="eigh", **kw)
    eye = torch.eye(K.shape[0], dtype=torch.float64)
    return float(torch.linalg.norm(S.double() - ref) / torch.linalg.norm(ref - eye))


def image_entk(arch: str, h: int = 64, w: int = 96, patch: int = 4, seed: int = 0) -> torch.Tensor:
    """float32 eNTK of one point per patch of a full-size (256-wide) image network: 384 groups."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig(architecture=arch))
    groups = patch_groups(h, w, patch)
    pts = coordinate_grid(h, w).reshape(-1, 2)[groups]
    idx = torch.randint(pts.shape[1], (pts.shape[0],))
    return entk(model, pts[torch.arange(pts.shape[0]), idx]).detach()


@pytest.mark.parametrize("arch,end", [("ReLU", 25), ("PE", 20), ("SIREN", 20)])
def test_topk_matches_float64_eigh_on_image_entks(arch, end):
    K = image_entk(arch)
    assert K.dtype == torch.float32 and K.shape == (384, 384)
    es = TopkEigensolver()
    S = transformation_matrix(K, end, solver="topk", eigensolver=es)
    assert es.counts["topk"] == 1 and es.counts["fallbacks"] == 0, "topk must have run, not eigh"
    assert s_error(S, K, end) <= TOL
    assert s_error(torch.eye(384), K, end) > 0.5, "S must differ from I for the check to mean anything"


def test_topk_at_few_groups_never_exhausts_the_space():
    """160 groups, block 34: an unbounded Krylov basis passes n and breaks Rayleigh–Ritz."""
    es = TopkEigensolver()
    for seed in range(3):
        K = image_entk("ReLU", h=80, w=128, patch=8, seed=seed)
        assert K.shape == (160, 160)
        S = transformation_matrix(K, 25, solver="topk", eigensolver=es)
        assert s_error(S, K, 25) <= TOL
    assert es.counts["topk"] + es.counts["fallbacks"] == 3


@pytest.mark.parametrize("kw", [dict(variant="paper"), dict(target="start", start=2)])
def test_topk_matches_eigh_for_the_paper_variant_and_the_sgd_target(kw):
    K = image_entk("PE")
    es = TopkEigensolver()
    S = transformation_matrix(K, 12, solver="topk", eigensolver=es, **kw)
    assert es.counts["topk"] == 1
    assert s_error(S, K, 12, **kw) <= TOL


def toy_settings(item: str, arch: str, method: str, n_points: int) -> dict:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    s = copy.deepcopy(
        resolve_settings(config, Cell("toy", item, arch, method, cell_seeds(config, "toy", item, arch, method)[0]))
    )
    s["task"].update(n_points=n_points, kernel_monitor=False)
    s["train"].update(device="cpu")
    return s


@pytest.mark.parametrize(
    "item,arch,method", [("exp2_s16", "ReLU", "IGA-g1e8"), ("exp1_w1024_s16", "TwoLayer", "eNTK-e15")]
)
def test_topk_matches_eigh_on_toy_entks(item, arch, method):
    from iga.tasks.toy import build_cell

    model, task, adjuster, *_ = build_cell(toy_settings(item, arch, method, 256))
    x = task.x
    assert x.shape[0] == 256
    K = entk(model, x).detach().float()
    end = adjuster.cfg.end
    es = TopkEigensolver()
    S = transformation_matrix(K, end, adjuster.cfg.target, adjuster.cfg.start, solver="topk", eigensolver=es)
    assert es.counts["topk"] == 1
    assert s_error(S, K, end, target=adjuster.cfg.target, start=adjuster.cfg.start) <= TOL


def test_topk_matches_eigh_on_the_nerf_fine_network():
    pytest.importorskip("nerfstudio")
    from nerfstudio.data.scene_box import SceneBox

    from iga.nerf.model import NeRFAdjusterConfig, NeRFPytorchModelConfig

    torch.manual_seed(0)
    box = SceneBox(aabb=torch.tensor([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]))
    model = NeRFPytorchModelConfig(
        net_width=64,
        net_depth=8,
        num_coarse_samples=4,
        num_importance_samples=4,
        use_lpips=False,
        adjuster=NeRFAdjusterConfig(kind="iga", solver="topk"),
    ).setup(scene_box=box, num_train_data=4)
    pts = torch.cat([torch.rand(256, 3) * 2 - 1, torch.nn.functional.normalize(torch.randn(256, 3), dim=-1)], 1)
    S = model.iga_transformation(pts)
    K = entk(model.iga_network(), pts).detach()
    assert model.adjuster_stats()["eig_topk_steps"] == 1
    assert s_error(S, K, 25) <= TOL


def test_warm_start_reuses_the_last_basis_and_needs_fewer_iterations():
    K0 = image_entk("SIREN", seed=0)
    K1 = K0 + 1e-4 * K0.abs().mean() * torch.eye(384)  # a slightly different kernel, same eigenvectors
    cold, warm = TopkEigensolver(), TopkEigensolver()
    transformation_matrix(K0, 20, solver="topk", eigensolver=warm)
    assert warm.basis is not None
    it_before = warm.counts["iterations"]
    S = transformation_matrix(K1, 20, solver="topk", eigensolver=warm)
    transformation_matrix(K1, 20, solver="topk", eigensolver=cold)
    assert warm.counts["iterations"] - it_before < cold.counts["iterations"]
    assert s_error(S, K1, 20) <= TOL


def test_skipped_rayleigh_ritz_steps_keep_the_result_and_adapt():
    """Convergence is only tested from one product before the last call's count: a stale, too-high
    expectation costs products, never accuracy, and is lowered to what this kernel needed."""
    K = image_entk("SIREN")
    reference = TopkEigensolver()
    transformation_matrix(K, 20, solver="topk", eigensolver=reference)
    needed = reference.counts["iterations"]
    es = TopkEigensolver()
    es.expected = {True: needed + 6, False: needed + 6}
    S = transformation_matrix(K, 20, solver="topk", eigensolver=es)
    assert es.counts["fallbacks"] == 0 and s_error(S, K, 20) <= TOL
    assert es.counts["iterations"] >= needed + 4  # no test before expected − 1
    assert es.expected[True] < needed + 6  # SIREN: the float32 products (a flat spectrum)


def test_steep_spectrum_goes_straight_to_float64_on_the_next_calls():
    K = image_entk("ReLU")  # λ_end/λ_0 far below 1e-2: the float32 attempt stops at its first product
    es = TopkEigensolver()
    transformation_matrix(K, 25, solver="topk", eigensolver=es)
    assert es.float64_only == TopkEigensolver.STEEP_SKIP
    first = es.counts["iterations"]
    S = transformation_matrix(K, 25, solver="topk", eigensolver=es)
    assert es.float64_only == TopkEigensolver.STEEP_SKIP - 1
    assert es.counts["iterations"] - first < first  # warm, and no wasted float32 product
    assert s_error(S, K, 25) <= TOL and es.counts["fallbacks"] == 0


def test_no_convergence_falls_back_to_eigh_and_is_counted():
    K = image_entk("SIREN")
    es = TopkEigensolver(max_iter=1)
    S = transformation_matrix(K, 20, solver="topk", eigensolver=es)
    assert es.counts["fallbacks"] == 1 and es.counts["topk"] == 0
    assert torch.equal(S, transformation_matrix(K, 20, solver="eigh"))  # exactly the dense result
    assert es.stats()["eig_fallbacks"] == 1


def test_eigh_and_auto_below_threshold_are_the_dense_result_bit_for_bit():
    K = image_entk("PE")
    assert K.shape[0] < AUTO_TOPK_MIN_GROUPS
    evals, evecs = torch.linalg.eigh(K)
    order = torch.argsort(evals, descending=True)
    lam, V = evals[order], evecs[:, order]
    w = lam[20] / lam[:20]
    S_ref = torch.eye(384) - (V[:, :20] * (1 - w)) @ V[:, :20].T
    assert torch.equal(transformation_matrix(K, 20, solver="eigh"), S_ref)
    assert torch.equal(transformation_matrix(K, 20), S_ref)  # auto: eigh below the threshold


def test_official_fallbacks_hold_for_topk():
    n = 64
    perm = torch.randperm(n)
    lam = torch.cat([torch.tensor([10.0, 8.0, 6.0]), torch.zeros(n - 3)])[perm]
    K = torch.diag(lam)  # rank 3 with exact zeros: λ_3.. = 0 in both solvers
    # λ_end = 0 -> S = I
    assert torch.equal(transformation_matrix(K, 5, solver="topk"), torch.eye(n))
    # target "start": the range [0, 5) stops at the first λ_i = 0 (after three directions)
    S = transformation_matrix(K, 5, target="start", solver="topk")
    S_ref = transformation_matrix(K.double(), 5, target="start", solver="eigh")
    assert not torch.allclose(S_ref, torch.eye(n, dtype=torch.float64))
    assert torch.allclose(S.double(), S_ref, atol=1e-6)
    K_nan = K.clone()
    K_nan[0, 1] = float("nan")
    assert torch.equal(transformation_matrix(K_nan, 2, solver="topk"), torch.eye(n))


def test_bad_solver_is_a_clear_error():
    with pytest.raises(ConfigError, match="solver='lanczos'.*eigh"):
        transformation_matrix(torch.eye(8), 2, solver="lanczos")
    with pytest.raises(ConfigError, match="adjuster.solver='lanczos'"):
        validate(AdjusterConfig, {"kind": "iga", "solver": "lanczos"}, "adjuster.")


def test_adjuster_keeps_counts_across_steps_and_resume():
    torch.manual_seed(0)
    model = build_model(ModelConfig(architecture="PE", hidden_features=64))
    G, P = 128, 4
    inputs, targets = torch.rand(G, P, 2) * 2 - 1, torch.rand(G, P, 3)
    adj = build_adjuster(AdjusterConfig(kind="iga", end=10, solver="topk"), torch.Generator().manual_seed(0))
    assert isinstance(adj, IGAAdjuster)
    for _ in range(3):
        outputs = model(inputs.reshape(-1, 2)).reshape(G, P, 3)
        adj.loss(model, inputs, outputs, targets)
    stats = adj.stats()
    assert stats["eigensolver"] == "topk"
    assert stats["eig_topk_steps"] + stats["eig_fallbacks"] == 3 and stats["eig_eigh_steps"] == 0
    again = build_adjuster(AdjusterConfig(kind="iga", end=10, solver="topk"))
    again.load_state_dict(adj.state_dict())
    assert again.stats() == stats


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_topk_on_cuda_matches_eigh():
    K = image_entk("SIREN").cuda()
    es = TopkEigensolver()
    S = transformation_matrix(K, 20, solver="topk", eigensolver=es)
    assert S.is_cuda and es.counts["topk"] == 1
    assert s_error(S.cpu(), K.cpu(), 20) <= TOL
