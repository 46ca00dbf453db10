"""The Lanczos process: an orthonormal basis of a Krylov subspace and its tridiagonal matrix.

Given a symmetric operator A (here: v ↦ ∇²f(x) v, one Hessian-vector product per
step) and a start vector v, m steps of the three-term recurrence

    q₁ = v/‖v‖,   β_j q_{j+1} = A q_j − α_j q_j − β_{j−1} q_{j−1},   α_j = q_jᵀ A q_j,

build V = [q₁, …, q_k] with VᵀV = I and VᵀAV = T = tridiag(β, α, β), a basis of the
Krylov subspace K_k(A, v) = span{v, Av, …, A^{k−1}v}. Krylov CRN (Jiang et al., 2024)
minimizes the cubic model in this subspace: with g = ∇f(x) as start vector, the model's
gradient in the basis is ‖g‖e₁ and its Hessian is T.

The process stops early (k < m) when β_j is negligible: K_j is then an invariant
subspace of A, which happens after at most as many steps as A has distinct eigenvalues
(with a non-zero component of v). In floating point the q_j slowly lose orthogonality
once Ritz values converge (Paige); ``reorthogonalize=True`` applies full Gram–Schmidt
(twice) against all previous q_j at O(k·d) extra cost per step. The authors' code does not
reorthogonalize; with m ≤ 20 the loss is mild.

The functions work on numpy arrays and on torch tensors (CPU or CUDA) alike: the few
vector operations go through the small helpers at the top of this module, which the other
modules of the package share.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from reprobook.checks import check_count, check_real

# ----------------------------------------------------------------------------
# Array helpers: numpy arrays and torch tensors through one small interface.
# ----------------------------------------------------------------------------


def is_tensor(value):
    """Whether ``value`` is a torch tensor (without importing torch when it is not loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def dot(a, b):
    """aᵀb as a Python float."""
    if is_tensor(a):
        return float(a.dot(b))
    return float(np.dot(a, b))


def norm(a):
    """‖a‖₂ as a Python float."""
    if is_tensor(a):
        return float(a.norm())
    return float(np.linalg.norm(a))


def to_numpy(a):
    """A numpy float64 copy of a vector or matrix (a tensor is moved to the CPU)."""
    if is_tensor(a):
        return a.detach().cpu().numpy().astype(np.float64)
    return np.array(a, dtype=np.float64)


def like(array, reference):
    """A numpy array (or number) as the reference's kind: a tensor of its dtype and device, or float64."""
    if is_tensor(reference):
        import torch

        return torch.as_tensor(np.asarray(array), dtype=reference.dtype, device=reference.device)
    return np.asarray(array, dtype=np.float64)


def empty_rows(reference, rows):
    """An uninitialized (rows, d) array of the reference's kind, d = len(reference)."""
    if is_tensor(reference):
        import torch

        return torch.empty((rows, reference.shape[0]), dtype=reference.dtype, device=reference.device)
    return np.empty((rows, reference.shape[0]), dtype=np.float64)


_CONTROLLER = []


def one_blas_thread():
    """A context in which numpy's and scipy's BLAS run on one thread (threadpoolctl).

    The methods' dense work is BLAS-1/2 on long vectors (memory-bound) and small
    eigendecompositions, which gain little from threads; on a small machine shared with
    other work, multi-threaded OpenBLAS instead spins and can run a dot product or a
    500×500 eigh a hundred times slower. Torch's own thread pool is not affected.
    """
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController

        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


# ----------------------------------------------------------------------------
# Lanczos
# ----------------------------------------------------------------------------


@dataclass
class LanczosResult:
    """The outcome of k ≤ m Lanczos steps.

    Attributes:
        basis: V, the d×k matrix with orthonormal columns (a numpy array or a torch
            tensor, like the start vector; a transposed view of a k×d row-major array).
        alpha: the k diagonal entries of T (numpy).
        beta: the k−1 off-diagonal entries of T (numpy, all > 0).
        hvps: the number of operator applications used (= k).
        invariant: whether the process stopped early on an invariant subspace.
        start_norm: ‖v‖, so that the start vector is start_norm·V e₁.
    """

    basis: Any
    alpha: np.ndarray
    beta: np.ndarray
    hvps: int
    invariant: bool
    start_norm: float

    @property
    def steps(self):
        """k, the dimension of the Krylov basis."""
        return len(self.alpha)

    def tridiagonal(self):
        """T = VᵀAV as a dense k×k numpy array."""
        return np.diag(self.alpha) + np.diag(self.beta, 1) + np.diag(self.beta, -1)

    def ritz_values(self):
        """The eigenvalues of T in ascending order (approximations of A's extreme eigenvalues)."""
        from scipy.linalg import eigh_tridiagonal

        if self.steps == 1:
            return self.alpha.copy()
        return eigh_tridiagonal(self.alpha, self.beta, eigvals_only=True)


def lanczos(hvp, v, m, reorthogonalize=False, breakdown_tol=1e-8):
    """Run up to m Lanczos steps on the symmetric operator ``hvp`` from the start vector v.

    Args:
        hvp: a callable u ↦ A u (numpy array or torch tensor in, the same kind out).
        v: the non-zero start vector (1-D numpy array or torch tensor).
        m: the maximal number of steps (= operator applications), ≥ 1.
        reorthogonalize: apply full Gram–Schmidt (twice) against all previous basis
            vectors at every step.
        breakdown_tol: stop early when β_j ≤ breakdown_tol · scale, where scale is the
            largest ‖A q_i‖ seen so far (an estimate of ‖A‖ on the Krylov subspace): the
            subspace is then invariant up to this relative accuracy.

    Returns:
        A :class:`LanczosResult` with V (d×k), α (k), β (k−1) and hvps = k.
    """
    m = check_count("m", m)
    breakdown_tol = check_real("breakdown_tol", breakdown_tol, 0.0)
    if is_tensor(v):
        if v.ndim != 1:
            raise ValueError(f"v must be a 1-D vector, got shape {tuple(v.shape)}")
        if not bool(v.isfinite().all()):
            raise ValueError("v must contain only finite numbers")
    else:
        v = np.asarray(v, dtype=np.float64)
        if v.ndim != 1:
            raise ValueError(f"v must be a 1-D vector, got shape {v.shape}")
        if not np.all(np.isfinite(v)):
            raise ValueError("v must contain only finite numbers")
    start_norm = norm(v)
    if start_norm == 0.0:
        raise ValueError("v must be a non-zero vector")

    rows = empty_rows(v, m)  # q_j stored as rows: contiguous vectors, V = rows[:k].T
    alpha = np.zeros(m)
    beta = np.zeros(max(m - 1, 0))
    rows[0] = v / start_norm
    scale = 0.0
    invariant = False
    k = m
    for j in range(m):
        q = rows[j]
        w = hvp(q)
        if w.shape != q.shape:
            raise ValueError(f"hvp must return a vector of shape {tuple(q.shape)}, got {tuple(w.shape)}")
        scale = max(scale, norm(w))
        alpha[j] = dot(q, w)
        w = w - alpha[j] * q
        if j > 0:
            w = w - beta[j - 1] * rows[j - 1]
        if reorthogonalize:
            previous = rows[: j + 1]
            for _ in range(2):
                w = w - previous.T @ (previous @ w)
        if j == m - 1:
            break
        beta_j = norm(w)
        if beta_j <= breakdown_tol * scale or beta_j == 0.0:
            k = j + 1
            invariant = True
            break
        beta[j] = beta_j
        rows[j + 1] = w / beta_j
    return LanczosResult(
        basis=rows[:k].T,
        alpha=alpha[:k].copy(),
        beta=beta[: k - 1].copy(),
        hvps=k,
        invariant=invariant,
        start_norm=start_norm,
    )
