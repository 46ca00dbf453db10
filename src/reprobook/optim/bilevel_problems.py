"""Convex bi-level problems: the abstraction and the book's three instances.

A simple convex bi-level problem (the setting of FBi-PG, Merchav–Sabach–Teboulle,
arXiv:2407.21221) is

    min ω(x)  over  x ∈ X* = argmin φ(x),   φ = f + g,   ω = ω_s + ω_n,

with f convex and L_f-smooth, g convex and prox-friendly, ω_s convex and
L_ω-smooth (possibly 0) and ω_n convex and prox-friendly. The methods need
∇f, ∇ω_s and the joint prox of g + η ω_n; :class:`BilevelProblem` bundles them.

Instances:

* :func:`nemirovski_instance`: a 7-dimensional least-squares inner problem whose
  solution set is a 3-dimensional affine set, with a known bi-level solution;
* :func:`sparse_linear_inverse`: an under-determined linear system with an ℓ1
  outer objective, whose bi-level solution is the basis-pursuit solution
  (Gaussian, or ill-conditioned with a prescribed condition number);
* :func:`breast_cancer_logistic_l1`: ℓ1-minimal logistic regression on the
  scikit-learn breast-cancer data with cubic features.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog

from reprobook.checks import check_count, check_real, finite_array
from reprobook.optim.prox import prox_l1


def zero_function(x):
    """The zero function, the value of an absent term (g or ω_n)."""
    return 0.0


def zero_gradient(x):
    """The gradient of an absent smooth term (ω_s = 0)."""
    return np.zeros_like(x)


def identity_prox(v, step, eta):
    """The prox of g + η ω_n when both are absent: the identity."""
    return v


def _read_only(array):
    """A read-only float64 copy of ``array`` (safe to share from a cache)."""
    array = np.array(array, dtype=np.float64)
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class BilevelProblem:
    """min ω(x) over x ∈ argmin φ(x), with φ = f + g and ω = ω_s + ω_n.

    Attributes:
        name: a short label for plots and traces.
        dim: the dimension d of x.
        inner_smooth: f, the smooth part of the inner objective.
        inner_grad: ∇f.
        inner_lipschitz: L_f > 0, a Lipschitz constant of ∇f.
        outer: ω = ω_s + ω_n, the outer objective.
        outer_subgradient: a subgradient of ω (used by Bi-SG).
        prox: ``prox(v, step, eta)`` = prox_{step·(g + eta·ω_n)}(v), exact;
            ``eta = 0`` gives prox_{step·g}.
        inner_nonsmooth: g (the zero function when absent).
        outer_smooth_grad: ∇ω_s (zeros when ω_s = 0).
        outer_lipschitz: L_ω, a Lipschitz constant of ∇ω_s (0 when ω_s = 0).
        outer_is_smooth: True when ω_n = 0, so that ω = ω_s.
        inner_optimum: φ* = inf φ, or None when unknown.
        outer_optimum: ω* = ω(x*), or None when unknown.
        solution: the bi-level solution x*, or None when unknown.
        data: extra read-only material (e.g. a held-out test set).
    """

    name: str
    dim: int
    inner_smooth: Callable[[np.ndarray], float]
    inner_grad: Callable[[np.ndarray], np.ndarray]
    inner_lipschitz: float
    outer: Callable[[np.ndarray], float]
    outer_subgradient: Callable[[np.ndarray], np.ndarray]
    prox: Callable[[np.ndarray, float, float], np.ndarray]
    inner_nonsmooth: Callable[[np.ndarray], float] = zero_function
    outer_smooth_grad: Callable[[np.ndarray], np.ndarray] = zero_gradient
    outer_lipschitz: float = 0.0
    outer_is_smooth: bool = False
    inner_optimum: float | None = None
    outer_optimum: float | None = None
    solution: np.ndarray | None = None
    data: Mapping = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")
        check_count("dim", self.dim)
        for name in (
            "inner_smooth",
            "inner_grad",
            "outer",
            "outer_subgradient",
            "prox",
            "inner_nonsmooth",
            "outer_smooth_grad",
        ):
            if not callable(getattr(self, name)):
                raise TypeError(f"{name} must be callable")
        check_real("inner_lipschitz", self.inner_lipschitz, 0.0, open_lower=True)
        check_real("outer_lipschitz", self.outer_lipschitz, 0.0)
        for name in ("inner_optimum", "outer_optimum"):
            if getattr(self, name) is not None:
                check_real(name, getattr(self, name))
        if self.solution is not None:
            finite_array("solution", self.solution, (self.dim,))
            object.__setattr__(self, "solution", _read_only(self.solution))
        object.__setattr__(self, "data", types.MappingProxyType(dict(self.data)))

    def inner(self, x):
        """φ(x) = f(x) + g(x)."""
        return self.inner_smooth(x) + self.inner_nonsmooth(x)


def _least_squares(A, b):
    """f(x) = ½‖Ax − b‖², ∇f(x) = Aᵀ(Ax − b) and L_f = ‖A‖₂² (largest singular value squared)."""

    def value(x):
        residual = A @ x - b
        return 0.5 * float(residual @ residual)

    def gradient(x):
        return A.T @ (A @ x - b)

    return value, gradient, float(np.linalg.norm(A, 2) ** 2)


def _l1_outer(center):
    """ω(x) = ‖x − c‖₁: its value, a subgradient sign(x − c) and the prox of η ω (g = 0)."""

    def value(x):
        return float(np.abs(x - center).sum())

    def subgradient(x):
        return np.sign(x - center)

    def prox(v, step, eta):
        return prox_l1(v, step * eta, center)

    return value, subgradient, prox


NEMIROVSKI_DIM = 7
NEMIROVSKI_J = 4
NEMIROVSKI_TARGET = 50.0


def nemirovski_matrix():
    """The 7×7 lower-bidiagonal matrix A of the Nemirovski instance (J = 4).

    Diagonal (1, 1, 1, 1, 0, 0, 0); sub-diagonal A[i+1, i] = −1 for i = 0, 1, 2.
    Ax = e₁ reads x₀ = 1, x₁ = x₀, x₂ = x₁, x₃ = x₂, so x₀..x₃ = 1 and x₄..x₆ are free.
    """
    A = np.zeros((NEMIROVSKI_DIM, NEMIROVSKI_DIM))
    first = np.arange(NEMIROVSKI_J)
    A[first, first] = 1.0
    A[first[1:], first[:-1]] = -1.0
    return A


def nemirovski_instance(outer="l1"):
    """The Nemirovski example: a bi-level problem with a known solution.

    Inner: φ(x) = f(x) = ½‖Ax − e₁‖² with A from :func:`nemirovski_matrix`, g = 0,
    so X* = {x : x₀ = x₁ = x₂ = x₃ = 1} and φ* = 0.

    Outer (``outer``):
        ``"l1"``: ω(x) = ‖x − 50·𝟙‖₁ (non-smooth; prox = 50 + soft-threshold);
        ``"quadratic"``: ω(x) = ½‖x − 50·𝟙‖² (smooth, 1-strongly convex, L_ω = 1).

    Both pull the free coordinates to 50: x* = (1, 1, 1, 1, 50, 50, 50), with
    ω* = 4·49 = 196 (ℓ1) or ½·4·49² = 4802 (quadratic).
    """
    if not isinstance(outer, str):
        raise TypeError(f"outer must be a str, got {type(outer).__name__}")
    if outer not in ("l1", "quadratic"):
        raise ValueError(f"outer must be 'l1' or 'quadratic', got {outer!r}")
    A = nemirovski_matrix()
    target = np.eye(NEMIROVSKI_DIM)[0]
    f, grad_f, lipschitz = _least_squares(A, target)
    center = np.full(NEMIROVSKI_DIM, NEMIROVSKI_TARGET)
    solution = np.where(np.arange(NEMIROVSKI_DIM) < NEMIROVSKI_J, 1.0, NEMIROVSKI_TARGET)
    pinned = NEMIROVSKI_J  # x₀..x₃ = 1 sit at distance 49 from the target
    common = dict(
        dim=NEMIROVSKI_DIM,
        inner_smooth=f,
        inner_grad=grad_f,
        inner_lipschitz=lipschitz,
        inner_optimum=0.0,
        solution=solution,
    )
    if outer == "l1":
        value, subgradient, prox = _l1_outer(center)
        return BilevelProblem(
            name="nemirovski-l1",
            outer=value,
            outer_subgradient=subgradient,
            prox=prox,
            outer_optimum=pinned * (NEMIROVSKI_TARGET - 1.0),
            **common,
        )

    def quadratic(x):
        return 0.5 * float((x - center) @ (x - center))

    def quadratic_grad(x):
        return x - center

    return BilevelProblem(
        name="nemirovski-quadratic",
        outer=quadratic,
        outer_subgradient=quadratic_grad,
        prox=identity_prox,
        outer_smooth_grad=quadratic_grad,
        outer_lipschitz=1.0,
        outer_is_smooth=True,
        outer_optimum=0.5 * pinned * (NEMIROVSKI_TARGET - 1.0) ** 2,
        **common,
    )


def basis_pursuit(A, b):
    """min ‖x‖₁ subject to Ax = b, solved exactly as a linear program (HiGHS).

    With x = u − v and u, v ≥ 0: min 𝟙ᵀ(u + v) s.t. [A, −A][u; v] = b. Raises
    ValueError when the system has no solution.
    """
    A = finite_array("A", A)
    if A.ndim != 2:
        raise ValueError(f"A must be a 2-D array, got {A.ndim} dimensions")
    b = finite_array("b", b, (A.shape[0],))
    n = A.shape[1]
    result = linprog(
        np.ones(2 * n),
        A_eq=np.hstack([A, -A]),
        b_eq=b,
        bounds=(0, None),
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    if result.status != 0:
        raise ValueError(f"basis pursuit failed: {result.message}")
    return result.x[:n] - result.x[n:]


def _haar_orthonormal_columns(rng, rows, columns):
    """A rows × columns matrix with orthonormal columns, uniformly (Haar) distributed.

    QR of a Gaussian matrix, with the signs of R's diagonal moved into Q so that
    the distribution does not depend on the QR routine's sign convention.
    """
    q, r = np.linalg.qr(rng.standard_normal((rows, columns)))
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


@functools.lru_cache(maxsize=8)
def sparse_linear_inverse(m=400, n=1000, nonzeros=None, seed=0, condition_number=None):
    """Sparse recovery: the minimal-ℓ1 solution of an under-determined system.

    In the style of Nesterov's ℓ1 test generator used by bi-level benchmarks:
    A has i.i.d. N(0, 1)/√m entries, x_true has ``nonzeros`` (default n // 10)
    non-zero N(0, 1) entries on a random support, and b = A x_true (seeded with
    ``np.random.default_rng(seed)``).

    With ``condition_number`` κ ≥ 1 the matrix is ill-conditioned instead:
    A = U diag(σ) Vᵀ with U (m × m) and V (n × m) Haar-distributed orthonormal
    columns and singular values σ geometrically spaced from 1 down to 1/κ, so
    that AᵀA has condition number κ² on its range. First-order methods then
    show their worst-case behaviour for many iterations: plain gradient steps
    reduce ½‖Ax − b‖² like 1/k, accelerated ones like 1/k², until k is of the
    order of κ² and κ respectively.

    Inner: f(x) = ½‖Ax − b‖², g = 0, L_f = ‖A‖₂²; φ* = 0 and, for m < n,
    X* = {x : Ax = b}. Outer: ω(x) = ‖x‖₁. The bi-level solution is the
    basis-pursuit solution, computed exactly by :func:`basis_pursuit`.
    ``data["x_true"]`` holds the planted sparse vector. Cached: equal arguments
    return the same (read-only) problem.
    """
    m = check_count("m", m)
    n = check_count("n", n)
    nonzeros = max(1, n // 10) if nonzeros is None else check_count("nonzeros", nonzeros)
    if nonzeros > n:
        raise ValueError(f"nonzeros must be an integer <= n = {n}, got {nonzeros}")
    seed = check_count("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    if condition_number is None:
        A = rng.standard_normal((m, n)) / np.sqrt(m)
        name = f"sparse-linear-inverse-{m}x{n}"
    else:
        condition_number = check_real("condition_number", condition_number, 1.0)
        if m > n:
            raise ValueError(f"m must be <= n = {n} with a condition_number, got {m}")
        singular_values = np.geomspace(1.0, 1.0 / condition_number, m)
        A = (_haar_orthonormal_columns(rng, m, m) * singular_values) @ _haar_orthonormal_columns(rng, n, m).T
        name = f"sparse-linear-inverse-{m}x{n}-condition-{condition_number:g}"
    x_true = np.zeros(n)
    x_true[rng.choice(n, size=nonzeros, replace=False)] = rng.standard_normal(nonzeros)
    b = A @ x_true
    A.setflags(write=False)
    b.setflags(write=False)
    f, grad_f, lipschitz = _least_squares(A, b)
    value, subgradient, prox = _l1_outer(0.0)
    solution = basis_pursuit(A, b)
    return BilevelProblem(
        name=name,
        dim=n,
        inner_smooth=f,
        inner_grad=grad_f,
        inner_lipschitz=lipschitz,
        outer=value,
        outer_subgradient=subgradient,
        prox=prox,
        inner_optimum=0.0,
        outer_optimum=float(np.abs(solution).sum()),
        solution=solution,
        data={"A": A, "b": b, "x_true": _read_only(x_true)},
    )


def _check_classification_data(A, y):
    """Check a design matrix A (n × d) and labels y ∈ {−1, +1}ⁿ; return them as arrays."""
    A = finite_array("A", A)
    if A.ndim != 2:
        raise ValueError(f"A must be a 2-D array, got {A.ndim} dimensions")
    y = finite_array("y", y, (A.shape[0],))
    if not np.all(np.abs(y) == 1.0):
        raise ValueError("y must contain only the labels -1 and +1")
    return A, y


def is_linearly_separable(A, y):
    """Whether some x satisfies y_i a_iᵀx ≥ 1 for every row (strict linear separability).

    A feasibility linear program (HiGHS, zero objective). When it holds, the
    logistic loss has infimum 0, reached only as ‖x‖ → ∞ along a separating x.
    """
    A, y = _check_classification_data(A, y)
    n, d = A.shape
    result = linprog(np.zeros(d), A_ub=-(y[:, None] * A), b_ub=-np.ones(n), bounds=(None, None), method="highs")
    if result.status not in (0, 2):
        raise RuntimeError(f"the separability linear program did not finish: {result.message}")
    return result.status == 0


def classification_accuracy(A, y, x):
    """Fraction of rows with sign(a_iᵀx) = y_i (a score of exactly 0 counts as +1)."""
    A, y = _check_classification_data(A, y)
    x = finite_array("x", x, (A.shape[1],))
    predictions = np.where(A @ x >= 0.0, 1.0, -1.0)
    return float(np.mean(predictions == y))


def _logistic_loss(A, y):
    """f(x) = (1/n) Σ log(1 + exp(−y_i a_iᵀx)) and its gradient, computed stably.

    With margins m_i = y_i a_iᵀx: f = mean(logaddexp(0, −m)) and
    ∇f = −(1/n) Σ y_i σ(−m_i) a_i, where σ(−m) = exp(−logaddexp(0, m)).
    The Hessian (1/n) Aᵀ diag(σ(m)(1 − σ(m))) A is bounded by Aᵀ A/(4n) since
    σ(1 − σ) ≤ 1/4 (attained at x = 0), so L_f = ‖A‖₂²/(4n) is the tight constant.
    """
    signed = y[:, None] * A
    n = A.shape[0]

    def value(x):
        return float(np.mean(np.logaddexp(0.0, -(signed @ x))))

    def gradient(x):
        weights = np.exp(-np.logaddexp(0.0, signed @ x))
        return -(signed.T @ weights) / n

    return value, gradient, float(np.linalg.norm(A, 2) ** 2 / (4 * n))


@functools.lru_cache(maxsize=1)
def breast_cancer_logistic_l1():
    """ℓ1-minimal logistic regression on the breast-cancer data (cubic features).

    Data: scikit-learn's bundled ``load_breast_cancer`` (569 × 30), labels mapped
    to ±1, stratified 80/20 split (``random_state=42``), degree-3 polynomial
    features without bias, standardized with the training statistics, then a
    column of ones appended: the training design is 455 × 5456.

    Inner: f(x) = (1/n) Σ log(1 + exp(−y_i a_iᵀx)), g = 0, L_f = ‖A‖₂²/(4n).
    Outer: ω(x) = ‖x‖₁ (prox: soft-thresholding).

    The training set is linearly separable (d > n; checked by
    :func:`is_linearly_separable`, stored as ``data["separable"]``). Then
    φ* = inf f = 0 is not attained, X* is empty and the bi-level problem has no
    solution: the iterates follow the path of minimizers of φ + η ω as η → 0,
    whose norm grows without bound. ``inner_optimum`` is 0.0 in that case and
    None otherwise (φ* must then come from a long inner-only run).
    ``data`` holds ``A_train, y_train, A_test, y_test`` (read-only) for
    :func:`classification_accuracy`. Cached: built once per process.
    """
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler

    features, labels = load_breast_cancer(return_X_y=True)
    labels = np.where(labels == 1, 1.0, -1.0)
    X_train, X_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.2, stratify=labels, random_state=42
    )
    cubic = PolynomialFeatures(degree=3, include_bias=False)
    scaler = StandardScaler().fit(cubic.fit_transform(X_train))

    def design(X):
        scaled = scaler.transform(cubic.transform(X))
        return _read_only(np.hstack([scaled, np.ones((X.shape[0], 1))]))

    A_train, A_test = design(X_train), design(X_test)
    f, grad_f, lipschitz = _logistic_loss(A_train, y_train)
    separable = is_linearly_separable(A_train, y_train)
    value, subgradient, prox = _l1_outer(0.0)
    return BilevelProblem(
        name="breast-cancer-logistic-l1",
        dim=A_train.shape[1],
        inner_smooth=f,
        inner_grad=grad_f,
        inner_lipschitz=lipschitz,
        outer=value,
        outer_subgradient=subgradient,
        prox=prox,
        inner_optimum=0.0 if separable else None,
        data={
            "A_train": A_train,
            "y_train": _read_only(y_train),
            "A_test": A_test,
            "y_test": _read_only(y_test),
            "separable": separable,
        },
    )
