"""Neural tangent kernels and the IGA transformation matrix — the math in one place.

* :func:`jacobian` — per-sample parameter gradients (reference implementation, vmap of grad).
* :func:`entk` — the same kernel J·Jᵀ without materialising J: for a linear layer the
  per-sample gradient is δ·aᵀ, so K = Σ_layers (A·Aᵀ + 1) ⊙ (Δ·Δᵀ) from one forward and
  one backward pass over the sampled points.
* :func:`grouped_entk` — kernel of group-summed gradients (the official image code's quirk).
* :func:`transformation_matrix` — S from the eigendecomposition of K (paper eq. 5, official form),
  dense (``eigh``) or from only the top end+1 eigenpairs (:class:`TopkEigensolver`, warm-started).
* :func:`analytic_relu_ntk` — the exact NTK of the 2-layer ReLU network of toy Exp. 1.

Multi-output networks are reduced to one scalar by "sum of logits": g(x) = Σ_o f_o(x)/√O.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from .configs import ConfigError
from .models.fourier_reparam import FourierLinear

log = logging.getLogger(__name__)

_LINEAR_TYPES = (nn.Linear, FourierLinear)


def sum_of_logits(out: torch.Tensor) -> torch.Tensor:
    """[..., O] -> [...]: Σ_o f_o / √O (a frozen all-1/√O linear layer, as the official code)."""
    return out.sum(dim=-1) / math.sqrt(out.shape[-1])


def _trainable(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.named_parameters() if v.requires_grad}


def _check_no_batch_coupling(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training:
            raise ConfigError(
                "the eNTK is per-sample and undefined for a model with BatchNorm in "
                "training mode; IGA and BN are separate methods (use method 'IGA' or 'BN')"
            )


def jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Per-sample gradients of the (sum-of-logits) output w.r.t. all trainable parameters: [n, q]."""
    _check_no_batch_coupling(model)
    params = {k: v.detach() for k, v in _trainable(model).items()}
    buffers = dict(model.named_buffers())

    def scalar(p, xi):
        out = functional_call(model, (p, buffers), (xi.unsqueeze(0),))
        return sum_of_logits(out).sum()

    g = vmap(grad(scalar), in_dims=(None, 0))(params, x)
    return torch.cat([g[k].reshape(x.shape[0], -1) for k in params], dim=1)


def _linear_layers(model: nn.Module) -> list[nn.Module] | None:
    """The layers holding every trainable parameter, or None if some parameter is elsewhere."""
    layers, covered = [], set()
    for m in model.modules():
        if isinstance(m, _LINEAR_TYPES):
            own = [p for p in m.parameters(recurse=False) if p.requires_grad]
            if own:
                layers.append(m)
                covered.update(id(p) for p in own)
    if any(id(p) not in covered for p in model.parameters() if p.requires_grad):
        return None
    return layers


def _layer_factors(model: nn.Module, x: torch.Tensor, layers) -> list[tuple[nn.Module, torch.Tensor, torch.Tensor]]:
    """One forward + one backward: for each layer its effective inputs A and output grads Δ."""
    captured: dict[nn.Module, list] = {m: [] for m in layers}

    def hook(mod, inputs, output):
        captured[mod].append((inputs[0], output))

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        with torch.enable_grad():
            out = model(x)
            calls = [captured[m] for m in layers]
            if any(len(c) != 1 for c in calls):
                raise RuntimeError("a linear layer ran more or less than once per forward")
            outs = [c[0][1] for c in calls]
            deltas = torch.autograd.grad(sum_of_logits(out).sum(), outs, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    factors = []
    for m, c, d in zip(layers, calls, deltas):
        a = c[0][0].detach()
        if d is None:
            d = torch.zeros_like(c[0][1])
        if isinstance(m, FourierLinear):  # ∂z/∂Λ = δ·(B·a)ᵀ: B·a plays the input's role
            a = a @ m.bases.T
        factors.append((m, a, d.detach()))
    return factors


def _weight_trainable(m) -> bool:
    w = m.lamb if isinstance(m, FourierLinear) else m.weight
    return w.requires_grad


def _bias_trainable(m) -> bool:
    return m.bias is not None and m.bias.requires_grad


def _jacobian_kernel(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    j = jacobian(model, x)
    return j @ j.T


def entk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """eNTK K = J·Jᵀ of the points ``x`` [n, in] without forming J (falls back to it when needed)."""
    _check_no_batch_coupling(model)
    layers = _linear_layers(model)
    if layers is None:
        log.debug("entk: parameters outside linear layers, using the vmap Jacobian")
        return _jacobian_kernel(model, x)
    n = x.shape[0]
    try:
        factors = _layer_factors(model, x, layers)
    except RuntimeError:
        return _jacobian_kernel(model, x)
    if any(a.shape[0] != n or a.dim() != 2 for _, a, _ in factors):  # several vectors per sample
        return _jacobian_kernel(model, x)
    if n >= SYMMETRIC_FROM:
        return _assemble_symmetric(factors, n, x)
    K = torch.zeros(n, n, dtype=x.dtype, device=x.device)
    for m, a, d in factors:
        inner = a @ a.T if _weight_trainable(m) else torch.zeros(n, n, dtype=a.dtype, device=a.device)
        if _bias_trainable(m):
            inner = inner + 1.0
        K = K + inner * (d @ d.T)
    return K


# Large kernels are assembled block by block, upper triangle only (K is symmetric): the two Gram
# products per layer are its whole cost (n²·width each), and with b row blocks the upper triangle
# needs (b+1)/2b of them, with no n×n temporaries. Measured on CPU (1 thread): 1,536 points 0.14-0.18 s
# -> 0.08-0.09 s, 2,048 (toy Exp. 2) 0.39 -> 0.18 s; blocks of 256 rows beat 384 and 512. Below
# SYMMETRIC_FROM points the plain products are kept, so every smaller kernel (the smoke and mini
# presets' cells among them) is unchanged to the bit.
SYMMETRIC_FROM, SYMMETRIC_BLOCK = 1024, 256


def _assemble_symmetric(factors, n: int, x: torch.Tensor) -> torch.Tensor:
    """K = Σ_layers (A·Aᵀ + 1) ⊙ (Δ·Δᵀ) from its upper-triangular row blocks, mirrored."""
    b = n // SYMMETRIC_BLOCK
    edges = [round(i * n / b) for i in range(b + 1)]
    blocks = [slice(edges[i], edges[i + 1]) for i in range(b)]
    K = torch.zeros(n, n, dtype=x.dtype, device=x.device)
    for m, a, d in factors:
        weight, bias = _weight_trainable(m), _bias_trainable(m)
        if not (weight or bias):
            continue
        for i, rows in enumerate(blocks):
            for cols in blocks[i:]:
                dd = d[rows] @ d[cols].T
                if weight:
                    inner = a[rows] @ a[cols].T
                    if bias:
                        inner += 1.0
                    K[rows, cols].addcmul_(inner, dd)
                else:
                    K[rows, cols] += dd
    for i, rows in enumerate(blocks):
        for cols in blocks[i + 1 :]:
            K[cols, rows] = K[rows, cols].T
    return K


def grouped_entk(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Kernel of group-summed gradients: x [G, k, in], K_jl = <Σ_a ∇g(x_ja), Σ_b ∇g(x_lb)>.

    This is what the official image code computes through its indexing quirk (k = G).
    """
    _check_no_batch_coupling(model)
    G, k = x.shape[:2]
    layers = _linear_layers(model)
    if layers is None:
        raise ConfigError("the official indexing quirk needs a model whose parameters are all in linear layers")
    K = torch.zeros(G, G, dtype=x.dtype, device=x.device)
    for m, a, d in _layer_factors(model, x.reshape(G * k, -1), layers):
        a = a.reshape(G, k, -1)
        d = d.reshape(G, k, -1)
        if _weight_trainable(m):
            gw = torch.einsum("gko,gki->goi", d, a).reshape(G, -1)
            K = K + gw @ gw.T
        if _bias_trainable(m):
            gb = d.sum(dim=1)
            K = K + gb @ gb.T
    return K


def _all_finite(K: torch.Tensor) -> bool:
    # one read of K (min and max propagate NaN, and ±inf are extremes): ~30x cheaper than isfinite().all()
    lo, hi = torch.aminmax(K)
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


def _identity_like(K: torch.Tensor) -> torch.Tensor:
    return torch.eye(K.shape[0], dtype=K.dtype, device=K.device)


def transformation_matrix(
    K: torch.Tensor,
    end: int,
    target: str = "end",
    start: int = 0,
    variant: str = "official",
    solver: str = "auto",
    eigensolver: TopkEigensolver | None = None,
) -> torch.Tensor:
    """S with the eigenvectors of K that balances the eigenvalues with index in [start, end).

    Eigenvalues sorted descending, 0-based, ``end`` exclusive, λ_t = λ_end ("end", Adam) or
    λ_start ("start", SGD). Official code: S = Σ_{i∈[start,end)} (λ_t/λ_i) v_i v_iᵀ + Σ_{others} v_i v_iᵀ,
    stopping at the first λ_i ≤ 0. ``variant="paper"`` weighs the other directions by λ_i (eq. 5 as
    printed). A failing or non-positive decomposition gives S = I with a warning, never NaN.

    ``solver``: "eigh" (dense, every eigenpair), "topk" (only the top end(+1) pairs, see
    :class:`TopkEigensolver`; falls back to eigh when it does not converge) or "auto" (topk from
    ``AUTO_TOPK_MIN_GROUPS`` groups). ``eigensolver`` keeps the warm start and the counts across steps.
    """
    if target not in ("start", "end"):
        raise ConfigError(f"target={target!r} is not allowed; choose 'start' or 'end'")
    if variant not in ("official", "paper"):
        raise ConfigError(f"variant={variant!r} is not allowed; choose 'official' or 'paper'")
    if solver not in SOLVERS:
        raise ConfigError(f"solver={solver!r} is not allowed; choose one of {list(SOLVERS)}")
    n = K.shape[0]
    max_end = n - 1 if target == "end" else n
    if not (0 <= start < end <= max_end):
        raise ConfigError(
            f"end={end} (start={start}) does not fit {n} sampled groups: need "
            f"0 <= start < end <= {max_end} (target={target!r} uses λ_end, so end < n)"
            if target == "end"
            else f"end={end} (start={start}) does not fit {n} sampled groups: need 0 <= start < end <= {n}"
        )
    if not _all_finite(K):
        log.warning("IGA: kernel has non-finite entries; using S = I for this step")
        return _identity_like(K)
    es = eigensolver if eigensolver is not None else TopkEigensolver()
    wanted = end + 1 if target == "end" else end
    pairs = None
    topk = _use_topk(solver, n, es.block_size(n, wanted))
    if topk:
        try:
            pairs = es.top(K, wanted)
        except Exception as exc:  # e.g. a QR/eigh failure inside: eigh below decides
            log.debug("IGA: topk eigensolver failed (%s)", exc)
        if pairs is None:
            es.counts["fallbacks"] += 1
            if es.counts["fallbacks"] in (1, 10, 100, 1000, 10000):
                log.warning(
                    "IGA: topk eigensolver did not converge (%d time(s) so far); using eigh for this step",
                    es.counts["fallbacks"],
                )
    if pairs is None:
        if not topk:  # a fallback is counted as such, not as an eigh step
            es.counts["eigh"] += 1
        try:
            evals, evecs = torch.linalg.eigh(K)  # in K's dtype: float32 as the official code
        except Exception as exc:  # torch.linalg.LinAlgError and friends: the official code falls back to I
            log.warning("IGA: eigendecomposition failed (%s); using S = I for this step", exc)
            return _identity_like(K)
        order = torch.argsort(evals, descending=True)
        lam, V = evals[order], evecs[:, order]
    else:
        lam, V = pairs[0].to(K.dtype), pairs[1].to(K.dtype)
    lam_t = lam[end] if target == "end" else lam[start]
    if not lam_t > 0:
        log.warning("IGA: target eigenvalue %.3g is not positive; using S = I for this step", float(lam_t))
        return _identity_like(K)
    rng = lam[start:end]
    nonpos = (rng <= 0).nonzero()
    stop = start + (int(nonpos[0]) if len(nonpos) else end - start)  # first λ_i ≤ 0 ends the range
    if variant == "official":
        Vs = V[:, start:stop]
        w = lam_t / lam[start:stop]
        S = (Vs * (w - 1)) @ Vs.T  # I − …, built in place: no second n×n matrix (same bits)
        S.diagonal().add_(1)
    elif pairs is None:
        d = lam.clone()
        d[start:stop] = lam_t / lam[start:stop]
        S = (V * d) @ V.T
    else:  # only the top pairs: K with the balanced directions' λ_i replaced by λ_t/λ_i
        Vs = V[:, start:stop]
        S = K + (Vs * (lam_t / lam[start:stop] - lam[start:stop])) @ Vs.T
    return S.to(K.dtype)


def _use_topk(solver: str, n: int, block: int) -> bool:
    if 4 * block > n:  # the block is a large part of the matrix: nothing to gain over eigh
        return False
    return solver == "topk" or (solver == "auto" and n >= AUTO_TOPK_MIN_GROUPS)


# --- top-k eigenpairs: IGA needs only the top `end` (+1) of n ------------------------------------
SOLVERS = ("eigh", "topk", "auto")
# `auto` uses topk from this many groups on. Chosen from `benchmarks/iga_group_scaling.py --solve-only`
# (CPU, 1 thread, real PE/SIREN eNTKs; benchmarks/results/iga_group_scaling_cpu_2cores.txt): float32
# eigh vs warm topk 0.012-0.017 s vs 0.013 s at 384 groups (a tie: eigh kept, so 384-group IGA cannot
# regress), 0.026-0.042 s vs 0.016-0.017 s at 512, 0.42-0.45 s vs 0.07-0.08 s at 1536.
AUTO_TOPK_MIN_GROUPS = 512


class TopkEigensolver:
    """Top eigenpairs of a symmetric PSD kernel by warm-started block Lanczos (full reorthogonalisation).

    One object per training run: the Ritz vectors of the last call start the next (the eNTK of the
    same groups changes slowly between steps). Each iteration appends K·(last block), orthogonalised
    against the basis, and does Rayleigh–Ritz; when the basis holds ``max_blocks`` blocks it restarts
    from the current top Ritz vectors. Converged when ‖K v_i − θ_i v_i‖ ≤ tol·θ_w for every wanted i,
    θ_w the smallest wanted Ritz value: S's sensitivity to K is ~1/λ_end, so a residual relative to
    λ_0 (ReLU: λ_0/λ_25 ≈ 6000) would not bound S's error. Rayleigh–Ritz in float64; the kernel
    products (n²·block, cheap next to eigh's n³) in float64 for steep spectra and in float32 for flat
    ones (λ_end/λ_0 ≥ 1e-2), whose result is then checked with one float64 product. tol = 1e-4 gave S
    within 2e-5 (relative
    Frobenius of S − I) of float64 eigh on real ReLU/PE/SIREN eNTKs. The basis stays below n − block
    columns (restarts) so it never exhausts the space. After ``max_iter`` products :meth:`top`
    returns None and the caller falls back to ``eigh``.
    """

    def __init__(self, tol: float = 1e-4, max_iter: int = 40, max_blocks: int = 8, oversample: int = 8):
        self.tol, self.max_iter, self.max_blocks, self.oversample = tol, max_iter, max_blocks, oversample
        self.basis: torch.Tensor | None = None
        self.counts = {"eigh": 0, "topk": 0, "fallbacks": 0, "iterations": 0}
        # products the last converged call needed, per precision: the Rayleigh–Ritz step (an eigh of the
        # growing projected matrix, the largest cost after the products) is skipped until one before that
        self.expected = {True: 0, False: 0}
        self.float64_only = 0  # calls left that skip the float32 attempt (its first product would be wasted)

    STEEP_SKIP = 25

    def block_size(self, n: int, wanted: int) -> int:
        return min(n, wanted + self.oversample)

    def _start(self, K: torch.Tensor, b: int) -> torch.Tensor:
        if self.basis is not None and self.basis.shape == (K.shape[0], b):
            return self.basis.to(K.device)
        gen = torch.Generator().manual_seed(0)  # cold start: deterministic, one host->device copy
        return torch.randn(K.shape[0], b, generator=gen, dtype=torch.float64).to(K.device)

    @staticmethod
    def _orth(Z: torch.Tensor, B: torch.Tensor | None) -> torch.Tensor:
        for _ in range(2 if B is not None else 0):  # twice is enough (Giraud et al.)
            Z = Z - B @ (B.T @ Z)
        return torch.linalg.qr(Z).Q

    def top(self, K: torch.Tensor, wanted: int):
        """(λ descending [wanted], V [n, wanted]) in float64, or None if not converged."""
        K64 = K.double()
        n = K.shape[0]
        b = self.block_size(n, wanted)
        start = self._start(K, b)
        used = 0
        if self.float64_only:  # a steep spectrum was seen lately: straight to float64 products
            self.float64_only -= 1
        elif K.dtype == torch.float32:
            # flat spectra (PE, SIREN: λ_end/λ_0 ~ 2e-2) converge slowly; their products may run in float32
            # (6x cheaper on CPU) while the tolerance, tol·λ_end, stays well above float32's error
            # (~1e-7·λ_0). The result is then checked with one float64 product, and polished if needed.
            theta, V, basis, used = self._krylov(K, K64, start, wanted, b, self.max_iter // 2, fast=True)
            if theta is not None:
                res = torch.linalg.vector_norm(K64 @ V - V * theta, dim=0)
                if bool((res <= self.tol * float(theta[-1])).all()):
                    return self._done(theta, V, basis, used)
            if basis is not None:
                start = basis
                if theta is None:  # stopped as steep (ReLU: λ_end/λ_0 ~ 2e-4); spectra change slowly
                    self.float64_only = self.STEEP_SKIP
        theta, V, basis, its = self._krylov(K64, K64, start, wanted, b, self.max_iter - used, fast=False)
        used += its
        if theta is None:
            self.basis = None
            self.counts["iterations"] += used
            return None
        return self._done(theta, V, basis, used)

    def _done(self, theta, V, basis, its):
        self.basis = basis
        self.counts["topk"] += 1
        self.counts["iterations"] += its
        return theta, V

    def _krylov(self, Kmv, K64, start, wanted, b, max_iter, fast):
        """Block Lanczos with products by ``Kmv``: (θ, V, next start, iterations) or (None, …, its)."""
        n = K64.shape[0]
        limit = min(self.max_blocks * b, n - b)  # below n: the Krylov space never exhausts
        mv = lambda X: (Kmv @ X.to(Kmv.dtype)).double()
        B = self._orth(start.double(), None)
        KB = mv(B)
        H = B.T @ KB  # Rayleigh quotient, grown block by block
        for it in range(1, max_iter + 1):
            restart = B.shape[1] + b > limit
            if 1 < it < min(self.expected[fast] - 1, max_iter) and not restart:
                B, KB, H = self._expand(mv, B, KB, H, b)  # convergence not expected yet: no Rayleigh–Ritz
                continue
            theta, W = torch.linalg.eigh((H + H.T) / 2)
            theta, W = theta.flip(0), W.flip(1)
            Wt = W[:, :wanted]
            V = B @ Wt
            # explicit residuals from the stored K·B (no extra product with K)
            res = torch.linalg.vector_norm(KB @ Wt - V * theta[:wanted], dim=0)
            ref = float(theta[wanted - 1])
            if not ref > 1e-10 * float(theta[0]):  # numerically rank-deficient: eigh decides, as before
                return None, None, None, it
            if fast and ref < 1e-2 * float(theta[0]):  # steep spectrum: float32 products are not enough
                return None, None, B @ W[:, :b], it
            if bool((res <= self.tol * ref).all()):
                self.expected[fast] = it
                return theta[:wanted], V, B @ W[:, :b], it
            if it == max_iter:
                break
            if restart:  # thick restart from the top Ritz vectors
                Wb = W[:, :b]
                B, KB, H = B @ Wb, KB @ Wb, torch.diag(theta[:b])
            B, KB, H = self._expand(mv, B, KB, H, b)
        return None, None, None, max_iter

    def _expand(self, mv, B, KB, H, b):
        """One block Lanczos step: K·(last block) orthogonalised against the basis, H grown by it."""
        Q = self._orth(KB[:, -b:], B)
        KQ = mv(Q)
        Hq = B.T @ KQ
        H = torch.cat([torch.cat([H, Hq], 1), torch.cat([Hq.T, Q.T @ KQ], 1)], 0)
        return torch.cat([B, Q], 1), torch.cat([KB, KQ], 1), H

    def stats(self) -> dict[str, float]:
        c = self.counts
        return {
            "eig_topk_steps": c["topk"],
            "eig_eigh_steps": c["eigh"],
            "eig_fallbacks": c["fallbacks"],
            "eig_topk_mean_iterations": round(c["iterations"] / max(c["topk"] + c["fallbacks"], 1), 3),
        }


def analytic_relu_ntk(x: torch.Tensor) -> torch.Tensor:
    """K_ij = (x_iᵀx_j + 1)(π − arccos(x_iᵀx_j)) / (4π) for unit-norm rows x [n, d].

    This is the expected eNTK of f(x) = (2m)^(-1/2) Σ_r a_r relu(w_rᵀx + b_r), w ~ N(0, I),
    b = 0, a = ±1 fixed (trained: w, b) — the official toy code's relu(z/√2)/√m is this network.
    (Any other constant scaling leaves S unchanged: S depends only on eigenvalue ratios.)
    """
    c = (x @ x.T).clamp(-1.0, 1.0)
    return (c + 1.0) * (math.pi - torch.arccos(c)) / (4 * math.pi)
