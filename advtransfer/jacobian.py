"""Per-sample Jacobians of batched models: explicit (small models, tests) and matrix-free.

A "batched model" maps a batch ``x`` of shape (B, *input_shape) to outputs (B, m) where row i depends
on x[i] only (put networks in eval mode so batch-norm uses its running statistics). J_f(x_i) is then the
(m, n) Jacobian of row i with respect to x[i] flattened, n = prod(input_shape) (notation of docs/definitions.md,
Section 1).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import func

BatchedModel = Callable[[torch.Tensor], torch.Tensor]


def jacobian(f: BatchedModel, x: torch.Tensor) -> torch.Tensor:
    """Explicit per-sample Jacobians J_f(x_i), shape (B, m, n), by vmap over jacrev."""

    def single(xi: torch.Tensor) -> torch.Tensor:
        return f(xi.unsqueeze(0)).squeeze(0)

    jac = func.vmap(func.jacrev(single))(x.detach())
    return jac.reshape(x.shape[0], jac.shape[1], -1)


def jvp(f: BatchedModel, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """J_f(x_i) v_i for every sample by one forward-mode pass, shape (B, m); v may be flat (B, n)."""
    x = x.detach()
    with _quiet_forward_ad():
        return func.jvp(f, (x,), (v.reshape(x.shape).to(x.dtype),))[1]


@contextmanager
def _quiet_forward_ad() -> Iterator[None]:
    """Silence torch-internal, harmless warnings of forward-mode AD: the deprecation of torch.jit.script
    (used once per process to load its jvp rules) and linearize's constant folding of its trace."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated")
        warnings.filterwarnings("ignore", message="Attempted to insert a get_attr Node")
        yield


class JacobianOperator:
    """Matrix-free J_f(x_i) for a batch: ``matvec`` gives J v, ``rmatvec`` gives J^T u; J is formed only
    by ``explicit``.

    ``linearize=True`` traces the forward-mode product once (``torch.func.linearize``, on the first
    ``matvec``) and replays it: a one-off tracing cost of about 10-20 forward passes of the batch (more
    the first time in a process) that pays when many products follow, because torch's forward-mode rules
    of convolutions and max-pool cost about three forward passes (docs/performance.md). Results equal
    the plain jvp's.
    """

    def __init__(self, f: BatchedModel, x: torch.Tensor, *, linearize: bool = False):
        self.f = f
        self.x = x.detach()
        self.output, self._pullback = func.vjp(f, self.x)
        self.batch = self.x.shape[0]
        self.n_in = self.x[0].numel()
        self.n_out = self.output.shape[1]
        self.linearize = linearize
        self._linear: Callable[[torch.Tensor], torch.Tensor] | None = None

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """J_f(x_i) v_i for every sample (forward-mode product), shape (B, m)."""
        if not self.linearize:
            return jvp(self.f, self.x, v)
        if self._linear is None:
            with _quiet_forward_ad():
                _, self._linear = func.linearize(self.f, self.x)
        return self._linear(v.reshape(self.x.shape).to(self.x.dtype))

    def explicit(self) -> torch.Tensor:
        """J_f(x_i) as (B, m, n) from m reverse-mode products through the stored pullback.

        Costs m backward passes of the batch and no forward pass: cheaper than a Krylov iteration
        (about m + 1 steps of jvp + vjp) when the model has few outputs, e.g. a classifier's logits.
        """
        eye = torch.eye(self.n_out, dtype=self.output.dtype, device=self.output.device)
        rows = [self.rmatvec(eye[k].expand(self.batch, self.n_out)) for k in range(self.n_out)]
        return torch.stack(rows, dim=1)

    def rmatvec(self, u: torch.Tensor) -> torch.Tensor:
        """J_f(x_i)^T u_i for every sample (reverse-mode product), shape (B, n)."""
        return self._pullback(u.to(self.output.dtype))[0].reshape(self.batch, -1)

    def gram_matvec(self, v: torch.Tensor) -> torch.Tensor:
        """J^T J v per sample, the operator whose top eigenvector is the top right singular vector."""
        return self.rmatvec(self.matvec(v))


@dataclass(frozen=True)
class TopSingular:
    """Top right singular vector v1 and the two largest singular values of each J_f(x_i)."""

    v1: torch.Tensor  # (B, n), unit norm
    sigma1: torch.Tensor  # (B,)
    sigma2: torch.Tensor  # (B,), 0 where J has rank 1
    iterations: int  # Krylov steps taken (0 for the exact SVD)


def top_singular_exact(jac: torch.Tensor) -> TopSingular:
    """v1, sigma1, sigma2 of explicit Jacobians (B, m, n) by full SVD."""
    _, s, vh = torch.linalg.svd(jac, full_matrices=False)
    sigma2 = s[:, 1] if s.shape[1] > 1 else torch.zeros_like(s[:, 0])
    return TopSingular(v1=_canonical_sign(vh[:, 0, :]), sigma1=s[:, 0], sigma2=sigma2, iterations=0)


def top_singular_lanczos(
    op: JacobianOperator,
    *,
    tol: float = 1e-6,
    max_iter: int = 100,
    generator: torch.Generator | None = None,
) -> TopSingular:
    """v1, sigma1, sigma2 of each J_f(x_i) by batched Lanczos on J^T J with full re-orthogonalisation.

    Stops when the residuals of the two leading Ritz pairs are below ``tol * theta_1`` for every sample
    (theta = sigma^2), or after ``max_iter`` steps; never forms J.
    """
    x = op.x
    batch, n = op.batch, op.n_in
    dtype = x.dtype
    q = torch.randn(batch, n, generator=generator, dtype=dtype, device="cpu").to(x.device)
    q = q / q.norm(dim=1, keepdim=True)
    basis = [q]
    alphas: list[torch.Tensor] = []
    betas: list[torch.Tensor] = []
    breakdown = 100 * torch.finfo(dtype).eps
    steps = min(max_iter, n)
    for step in range(steps):
        w = op.gram_matvec(basis[-1])
        alphas.append((w * basis[-1]).sum(dim=1))
        stacked = torch.stack(basis, dim=1)  # (B, k, n)
        for _ in range(2):  # classical Gram-Schmidt twice: full re-orthogonalisation
            w = w - torch.einsum("bk,bkn->bn", torch.einsum("bkn,bn->bk", stacked, w), stacked)
        beta = w.norm(dim=1)
        theta, ritz = torch.linalg.eigh(_tridiagonal(alphas, betas))  # ascending
        scale = theta[:, -1].clamp_min(torch.finfo(dtype).tiny)
        lead = min(2, theta.shape[1])
        residual = beta[:, None] * ritz[:, -1, -lead:].abs()  # ||J^T J y - theta y|| of leading pairs
        done = (residual <= tol * scale[:, None]).all(dim=1) | (beta <= breakdown * scale)
        if bool(done.all()) or step == steps - 1:
            break
        betas.append(beta)
        safe = torch.where(beta > breakdown * scale, beta, torch.ones_like(beta))
        basis.append(torch.where((beta > breakdown * scale)[:, None], w / safe[:, None], torch.zeros_like(w)))
    stacked = torch.stack(basis, dim=1)
    v1 = torch.einsum("bk,bkn->bn", ritz[:, :, -1], stacked)
    norm = v1.norm(dim=1, keepdim=True)
    v1 = torch.where(norm > 0.5, v1 / norm.clamp_min(1e-30), basis[0])  # J == 0: any unit vector is top
    sigma = theta.clamp_min(0).sqrt()
    sigma2 = sigma[:, -2] if sigma.shape[1] > 1 else torch.zeros_like(sigma[:, -1])
    # Ritz values of J^T J are Rayleigh quotients; recompute sigma1 from ||J v1|| for full accuracy.
    sigma1 = op.matvec(v1).flatten(1).norm(dim=1)
    return TopSingular(v1=_canonical_sign(v1), sigma1=sigma1, sigma2=sigma2, iterations=len(alphas))


def _tridiagonal(alphas: list[torch.Tensor], betas: list[torch.Tensor]) -> torch.Tensor:
    """Batched symmetric tridiagonal Lanczos matrix T (B, k, k) from its diagonals."""
    t = torch.diag_embed(torch.stack(alphas, dim=1))
    if betas:
        off = torch.diag_embed(torch.stack(betas, dim=1), offset=1)
        t = t + off + off.transpose(1, 2)
    return t


def _canonical_sign(v: torch.Tensor) -> torch.Tensor:
    """Fix the sign of each singular vector (largest-magnitude entry positive) for reproducible outputs."""
    idx = v.abs().argmax(dim=1, keepdim=True)
    sign = torch.sign(v.gather(1, idx))
    return v * torch.where(sign == 0, torch.ones_like(sign), sign)
