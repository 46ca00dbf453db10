"""Objective oracles with counted values, gradients and Hessian-vector products (HVPs).

Every oracle offers

* ``dim`` — the dimension d of the variable;
* ``value(x)`` (a Python float), ``gradient(x)``, ``hvp(x, v)`` — vectors of the oracle's
  kind: numpy arrays for :class:`LogisticOracle` and :class:`QuadraticOracle`, torch
  tensors on the oracle's device for :class:`TorchOracle`;
* counters ``values``, ``gradients``, ``hvps`` of what it served, and ``reset_counts()``;
* ``vector(name, x)``: x checked (finite, shape (d,)) and copied into the oracle's kind;
* subspace helpers used by the methods, with generic fallbacks here and exact sparse
  versions in :class:`LogisticOracle`:

  - ``hessian(x)``: the dense d×d Hessian (numpy); the fallback builds it from d HVPs;
  - ``partial_gradient(x, I)``: ∇f(x)[I] (numpy); counts as one gradient;
  - ``partial_hessian(x, I)``: ∇²f(x)[I, I] (numpy), from |I| HVPs with unit vectors;
  - ``coordinate_trial(x, I, s)``: (x⁺, f(x⁺)) for x⁺ = x + Σ_j s_j e_{I_j}, one value.

**Counting convention.** An explicit Hessian of size k×k (``hessian``: k = d,
``partial_hessian``: k = |I|) counts as k HVPs, whether it was built from HVPs or in closed
form: it carries the information of k HVPs. A partial gradient counts as one gradient.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
from scipy.special import expit

from reprobook.checks import check_count, check_real, finite_array
from reprobook.secondorder.lanczos import is_tensor, to_numpy


class Oracle:
    """The common interface; subclasses implement ``_value``, ``_gradient``, ``_hvp``."""

    dim: int

    def __init__(self, dim):
        self.dim = check_count("dim", dim)
        self.reset_counts()

    def reset_counts(self):
        """Set the counters ``values``, ``gradients`` and ``hvps`` to zero."""
        self.values = 0
        self.gradients = 0
        self.hvps = 0

    def counts(self):
        """The counters as a dict."""
        return {"values": self.values, "gradients": self.gradients, "hvps": self.hvps}

    # -- the kind of vector ---------------------------------------------------
    def vector(self, name, x):
        """x as a fresh float64 numpy vector of shape (d,), checked finite."""
        return finite_array(name, to_numpy(x) if is_tensor(x) else x, (self.dim,)).copy()

    def from_numpy(self, array):
        """A numpy array as the oracle's kind of vector."""
        return np.asarray(array, dtype=np.float64)

    # -- counted oracle calls ---------------------------------------------------
    def value(self, x):
        """f(x) as a float."""
        self.values += 1
        return float(self._value(x))

    def gradient(self, x):
        """∇f(x)."""
        self.gradients += 1
        return self._gradient(x)

    def hvp(self, x, v):
        """∇²f(x) v."""
        self.hvps += 1
        return self._hvp(x, v)

    def _value(self, x):
        raise NotImplementedError

    def _gradient(self, x):
        raise NotImplementedError

    def _hvp(self, x, v):
        raise NotImplementedError

    def hessian(self, x):
        """The dense Hessian ∇²f(x) as a numpy array, from d HVPs with unit vectors."""
        return self._hessian_columns(x, np.arange(self.dim))

    def _hessian_columns(self, x, index):
        """The columns ∇²f(x) e_j for j in index, stacked as a d×|index| numpy array."""
        columns = np.empty((self.dim, len(index)))
        for position, j in enumerate(index):
            unit = np.zeros(self.dim)
            unit[j] = 1.0
            columns[:, position] = to_numpy(self.hvp(x, self.from_numpy(unit)))
        return columns

    def partial_gradient(self, x, index):
        """∇f(x)[I] as a numpy vector (one gradient)."""
        return to_numpy(self.gradient(x))[np.asarray(index)]

    def partial_hessian(self, x, index):
        """∇²f(x)[I, I] as a numpy |I|×|I| array (|I| HVPs)."""
        index = np.asarray(index)
        block = self._hessian_columns(x, index)[index, :]
        return 0.5 * (block + block.T)

    def coordinate_trial(self, x, index, s):
        """(x⁺, f(x⁺)) for x⁺ = x + Σ_j s_j e_{I_j}, I of distinct coordinates (one value)."""
        moved = self.coordinate_step(x, index, s)
        return moved, self.value(moved)

    def coordinate_step(self, x, index, s):
        """x + Σ_j s_j e_{I_j} as a new vector of the oracle's kind (I of distinct coordinates)."""
        index = _distinct(index, self.dim)
        if is_tensor(x):
            import torch

            moved = x.clone()
            moved[torch.as_tensor(index, device=x.device)] += self.from_numpy(s)
            return moved
        moved = np.array(x, dtype=np.float64, copy=True)
        moved[index] += np.asarray(s, dtype=np.float64)
        return moved


def _distinct(index, dim):
    """A coordinate index array, checked to hold distinct integers in [0, dim)."""
    index = np.asarray(index)
    if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
        raise ValueError("index must be a 1-D array of integer coordinates")
    if index.size and (index.min() < 0 or index.max() >= dim or np.unique(index).size != index.size):
        raise ValueError(f"index must hold distinct coordinates in [0, {dim})")
    return index


def frozen(x):
    """x as a read-only float64 numpy array that owns its data (x itself when it already is one).

    The logistic oracle recognizes such arrays by identity in its cache of margins: they
    cannot change in place. Tensors are returned unchanged.
    """
    if is_tensor(x):
        return x
    if isinstance(x, np.ndarray) and x.dtype == np.float64 and not x.flags.writeable and x.flags.owndata:
        return x
    copy = np.array(x, dtype=np.float64, copy=True)
    copy.flags.writeable = False
    return copy


class QuadraticOracle(Oracle):
    """f(x) = ½ xᵀHx − cᵀx for a symmetric H (dense array, scipy sparse matrix or LinearOperator).

    Its Hessian is H everywhere; ``minimizer()`` solves Hx = c (for a positive definite H).
    For a dense or sparse H the partial gradient and Hessian of the coordinate methods read
    rows and entries of H instead of multiplying by it.
    """

    def __init__(self, H, c=None):
        if isinstance(H, scipy.sparse.linalg.LinearOperator):
            shape = H.shape
        elif scipy.sparse.issparse(H):
            H = scipy.sparse.csr_matrix(H, dtype=np.float64)
            shape = H.shape
            if not np.all(np.isfinite(H.data)):
                raise ValueError("H must contain only finite numbers")
        else:
            H = finite_array("H", H)
            shape = H.shape
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"H must be a square matrix, got shape {shape}")
        if isinstance(H, np.ndarray) and not np.allclose(H, H.T, rtol=1e-12, atol=1e-12 * np.abs(H).max()):
            raise ValueError("H must be symmetric")
        super().__init__(shape[0])
        self.H = H
        self.c = np.zeros(self.dim) if c is None else finite_array("c", c, (self.dim,))

    def _apply(self, v):
        return np.asarray(self.H @ v, dtype=np.float64).reshape(-1)

    def _value(self, x):
        return 0.5 * x @ self._apply(x) - self.c @ x

    def _gradient(self, x):
        return self._apply(x) - self.c

    def _hvp(self, x, v):
        return self._apply(v)

    def hessian(self, x):
        """H as a dense array (counts d HVPs)."""
        if isinstance(self.H, scipy.sparse.linalg.LinearOperator):
            return super().hessian(x)
        self.hvps += self.dim
        return self.H.toarray() if scipy.sparse.issparse(self.H) else self.H.copy()

    def partial_gradient(self, x, index):
        """∇f(x)[I] = H[I, :]x − c[I] (one gradient; O(nnz(H[I, :])) for a sparse H)."""
        if isinstance(self.H, scipy.sparse.linalg.LinearOperator):
            return super().partial_gradient(x, index)
        self.gradients += 1
        index = _distinct(index, self.dim)
        return np.asarray(self.H[index] @ x, dtype=np.float64).reshape(-1) - self.c[index]

    def partial_hessian(self, x, index):
        """H[I, I] as a dense array (counts |I| HVPs; no product with H)."""
        if isinstance(self.H, scipy.sparse.linalg.LinearOperator):
            return super().partial_hessian(x, index)
        index = _distinct(index, self.dim)
        self.hvps += len(index)
        block = self.H[index][:, index]
        block = block.toarray() if scipy.sparse.issparse(block) else np.array(block, dtype=np.float64)
        return 0.5 * (block + block.T)

    def minimizer(self):
        """The solution of Hx = c (dense or sparse direct solve, CG for a LinearOperator)."""
        if isinstance(self.H, np.ndarray):
            return np.linalg.solve(self.H, self.c)
        if scipy.sparse.issparse(self.H):
            return scipy.sparse.linalg.spsolve(self.H.tocsc(), self.c)
        solution, info = scipy.sparse.linalg.cg(self.H, self.c, rtol=1e-12, maxiter=10 * self.dim)
        if info != 0:
            raise RuntimeError(f"CG did not converge (info={info})")
        return solution


class _Point:
    """A cached point of the logistic oracle: x (read-only), margins Ax, lazily σ(1 − σ) and ‖x‖²."""

    __slots__ = ("x", "margins", "curvature", "squared_norm")

    def __init__(self, x, margins):
        self.x = x
        self.margins = margins
        self.curvature = None
        self.squared_norm = None


class LogisticOracle(Oracle):
    """Logistic regression f(x) = mean_i log(1 + exp(−y_i a_iᵀx)) + (l2/2)‖x‖² on a sparse A.

    Args:
        A: the n×d design (any scipy sparse matrix or dense array; stored as CSR plus a CSC
            copy, whose transpose view is a CSR Aᵀ for fast Aᵀw and whose columns serve the
            coordinate methods).
        b: n labels in {0, 1} or in {−1, +1} (0 and −1 both mean the negative class).
        l2: the ridge weight ≥ 0.

    The gradient is ∇f(x) = Aᵀ(−y ⊙ σ(−y ⊙ Ax))/n + l2·x and the HVP
    ∇²f(x)v = Aᵀ(σ(Ax)(1 − σ(Ax)) ⊙ Av)/n + l2·v, two sparse mat-vecs (O(nnz(A))). Values
    use ``np.logaddexp`` and σ is ``scipy.special.expit``, so large margins neither overflow
    nor lose precision.

    **Cache.** The margins Ax (with σ(1 − σ) and ‖x‖²) are kept for the two most recently
    used points (the methods evaluate value, gradient and many HVPs at one x, and try x⁺).
    A point is found by identity when it is a read-only array (see :func:`frozen`; the
    methods pass such arrays), else by comparing entries.
    """

    def __init__(self, A, b, l2=0.0):
        if scipy.sparse.issparse(A):
            A = scipy.sparse.csr_matrix(A, dtype=np.float64)
            if not np.all(np.isfinite(A.data)):
                raise ValueError("A must contain only finite numbers")
        else:
            A = finite_array("A", A)
            if A.ndim != 2:
                raise ValueError(f"A must be a 2-D matrix, got {A.ndim} dimensions")
            A = scipy.sparse.csr_matrix(A)
        n, d = A.shape
        if n < 1:
            raise ValueError("A must have at least one row")
        b = finite_array("b", b)
        if b.shape != (n,):
            raise ValueError(f"b must have shape ({n},) to match A's {n} rows, got {b.shape}")
        labels = set(np.unique(b).tolist())
        if labels <= {0.0, 1.0}:
            y = 2.0 * b - 1.0
        elif labels <= {-1.0, 1.0}:
            y = b.copy()
        else:
            raise ValueError(f"b must hold labels in {{0, 1}} or {{-1, +1}}, got values {sorted(labels)[:5]}")
        super().__init__(d)
        A.sort_indices()
        self.A = A
        self.csc = A.tocsc()
        self.n = n
        self.y = y
        self.l2 = check_real("l2", l2, 0.0)
        self._cache = []  # _Point objects, most recently used first
        self._lipschitz = None

    @property
    def labels01(self):
        """The labels as {0, 1}."""
        return (self.y > 0).astype(np.float64)

    def _transpose_times(self, w):
        """Aᵀw through the CSR view of the CSC copy (a row-wise gather)."""
        return self.csc.T @ w

    def _point(self, x):
        for position, point in enumerate(self._cache):  # noqa: B007 (used after the loop)
            if point.x is x:
                break
        else:
            for position, point in enumerate(self._cache):  # noqa: B007
                if np.array_equal(point.x, x):
                    break
            else:
                return self._remember(frozen(x), self.A @ np.asarray(x, dtype=np.float64))
        if position:
            self._cache.insert(0, self._cache.pop(position))
        return point

    def _remember(self, x, margins):
        point = _Point(x, margins)
        self._cache.insert(0, point)
        del self._cache[2:]
        return point

    def _curvature(self, point):
        if point.curvature is None:
            p = expit(point.margins)
            point.curvature = p * (1.0 - p)
        return point.curvature

    def _squared_norm(self, point):
        if point.squared_norm is None:
            point.squared_norm = float(point.x @ point.x)
        return point.squared_norm

    def _loss(self, point):
        value = float(np.mean(np.logaddexp(0.0, -self.y * point.margins)))
        if self.l2:
            value += 0.5 * self.l2 * self._squared_norm(point)
        return value

    def _value(self, x):
        return self._loss(self._point(x))

    def _residual_weights(self, point):
        return -self.y * expit(-self.y * point.margins) / self.n

    def _gradient(self, x):
        point = self._point(x)
        return self._transpose_times(self._residual_weights(point)) + self.l2 * point.x

    def _hvp(self, x, v):
        point = self._point(x)
        return self._transpose_times(self._curvature(point) * (self.A @ v)) / self.n + self.l2 * v

    def hessian(self, x):
        """The dense Hessian AᵀDA/n + l2·I in closed form (counts d HVPs; for small d)."""
        self.hvps += self.dim
        weighted = self.A.copy()
        weighted.data *= np.repeat(self._curvature(self._point(x)), np.diff(self.A.indptr))
        H = (self.csc.T @ weighted).toarray() / self.n
        H[np.diag_indices_from(H)] += self.l2
        return 0.5 * (H + H.T)

    def partial_gradient(self, x, index):
        """∇f(x)[I] = A[:, I]ᵀ(−y ⊙ σ(−y ⊙ Ax))/n + l2·x[I] (one gradient, O(n + nnz(A[:, I])))."""
        self.gradients += 1
        index = np.asarray(index)
        point = self._point(x)
        return self.csc[:, index].T @ self._residual_weights(point) + self.l2 * point.x[index]

    def partial_hessian(self, x, index):
        """A[:, I]ᵀ diag(σ(1 − σ)) A[:, I]/n + l2·I, exact (counts |I| HVPs)."""
        index = np.asarray(index)
        self.hvps += len(index)
        columns = self.csc[:, index]
        weighted = columns.copy()
        weighted.data *= self._curvature(self._point(x))[columns.indices]
        block = (columns.T @ weighted).toarray() / self.n
        block[np.diag_indices_from(block)] += self.l2
        return 0.5 * (block + block.T)

    def coordinate_trial(self, x, index, s):
        """(x⁺, f(x⁺)) for x⁺ = x + Σ_j s_j e_{I_j}, with incremental margins Ax + A[:, I]s.

        x⁺ and its margins enter the cache, so the next iteration at x⁺ costs
        O(n + nnz(A[:, I])) instead of O(nnz(A)) (plus one O(d) copy of x).
        """
        self.values += 1
        index = _distinct(index, self.dim)
        s = np.asarray(s, dtype=np.float64)
        point = self._point(x)
        moved = np.array(point.x, copy=True)
        moved[index] += s
        moved.flags.writeable = False
        new = self._remember(moved, point.margins + self.csc[:, index] @ s)
        if self.l2:
            old_part, new_part = point.x[index], moved[index]
            new.squared_norm = self._squared_norm(point) - old_part @ old_part + new_part @ new_part
        return moved, self._loss(new)

    def lipschitz_bound(self):
        """L = ‖A‖₂²/(4n) + l2, the Lipschitz constant of ∇f (σ(1 − σ) ≤ 1/4).

        ‖A‖₂ is computed by ARPACK (``scipy.sparse.linalg.svds``, relative tolerance 1e-10),
        or densely for a matrix with a side below 3; the value is cached.
        """
        if self._lipschitz is None:
            if min(self.A.shape) < 3:
                top = np.linalg.norm(self.A.toarray(), 2)
            else:
                top = scipy.sparse.linalg.svds(self.A, k=1, tol=1e-10, return_singular_vectors=False, random_state=0)[0]
            self._lipschitz = float(top) ** 2 / (4.0 * self.n)
        return self._lipschitz + self.l2


class TorchOracle(Oracle):
    """Any twice-differentiable torch loss of a 1-D parameter vector.

    The gradient is ``torch.func.grad(loss)``; the HVP is forward-over-reverse,
    ``torch.func.jvp(torch.func.grad(loss), (x,), (v,))``, about the cost of 2–4 gradients
    and O(d) memory. Vectors are tensors of ``dtype`` on ``device``.

    Args:
        loss: a function of a (d,)-tensor returning a scalar tensor.
        dim: d.
        device: a torch device (default: CPU).
        dtype: the floating dtype (default float64).
    """

    def __init__(self, loss, dim, device=None, dtype=None):
        import torch

        if not callable(loss):
            raise TypeError(f"loss must be callable, got {type(loss).__name__}")
        super().__init__(dim)
        self.loss = loss
        self.device = torch.device("cpu") if device is None else torch.device(device)
        self.dtype = torch.float64 if dtype is None else dtype
        if not (isinstance(self.dtype, torch.dtype) and self.dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating torch dtype, got {self.dtype!r}")
        self._grad = torch.func.grad(loss)

    def vector(self, name, x):
        """x as a fresh (d,) tensor of the oracle's dtype and device, checked finite."""
        import torch

        if is_tensor(x):
            if tuple(x.shape) != (self.dim,):
                raise ValueError(f"{name} must have shape ({self.dim},), got {tuple(x.shape)}")
            if not bool(torch.isfinite(x).all()):
                raise ValueError(f"{name} must contain only finite numbers")
            return x.detach().to(device=self.device, dtype=self.dtype).clone()
        return self.from_numpy(finite_array(name, x, (self.dim,)))

    def from_numpy(self, array):
        import torch

        return torch.as_tensor(np.asarray(array, dtype=np.float64), dtype=self.dtype, device=self.device)

    def _value(self, x):
        import torch

        with torch.no_grad():
            return self.loss(x).item()

    def _gradient(self, x):
        return self._grad(x)

    def _hvp(self, x, v):
        import torch

        return torch.func.jvp(self._grad, (x,), (v,))[1]
