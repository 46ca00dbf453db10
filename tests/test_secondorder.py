"""Second-order building blocks: oracles (HVPs), Lanczos, the cubic subproblem, problem generators."""

import numpy as np
import pytest
import scipy.sparse
import torch
from scipy.optimize import minimize

from reprobook.secondorder import (
    CUBIC_DENOMINATOR,
    CubicSubproblem,
    LogisticOracle,
    QuadraticOracle,
    TorchOracle,
    cubic_model,
    lanczos,
    logistic_with_spectrum,
    news20_like,
    quadratic_with_law,
    quadratic_with_spectrum,
    rcv1_like,
    solve_cubic,
    solve_cubic_cg,
    solve_cubic_tridiagonal,
    w8a_like,
)

RNG = np.random.default_rng(0)


def small_logistic(n=40, d=7, l2=0.1, seed=1):
    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(n, d)) * (rng.random((n, d)) < 0.6)
    labels = np.where(rng.random(n) < 0.4, 1.0, -1.0)
    return dense, labels, LogisticOracle(scipy.sparse.csr_matrix(dense), labels, l2=l2)


def torch_logistic_loss(dense, labels, l2):
    A = torch.tensor(dense)
    y = torch.tensor(labels)

    def loss(x):
        return torch.nn.functional.softplus(-y * (A @ x)).mean() + 0.5 * l2 * (x @ x)

    return loss


def random_symmetric(d, rng, eigenvalues=None):
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    lam = rng.normal(size=d) if eigenvalues is None else np.asarray(eigenvalues, dtype=float)
    return (Q * lam) @ Q.T, lam, Q


# ---------------------------------------------------------------------------- oracles


def test_logistic_oracle_matches_finite_differences_and_torch():
    dense, labels, oracle = small_logistic()
    x = RNG.normal(size=7)
    v = RNG.normal(size=7)
    loss = torch_logistic_loss(dense, labels, 0.1)
    xt = torch.tensor(x)
    assert oracle.value(x) == pytest.approx(loss(xt).item(), rel=1e-13)
    np.testing.assert_allclose(oracle.gradient(x), torch.func.grad(loss)(xt).numpy(), rtol=1e-12, atol=1e-14)
    hessian = torch.func.hessian(loss)(xt).numpy()
    hv = oracle.hvp(x, v)
    np.testing.assert_allclose(hv, hessian @ v, rtol=1e-11, atol=1e-13)
    h = 1e-5
    central = (oracle.gradient(x + h * v) - oracle.gradient(x - h * v)) / (2 * h)
    np.testing.assert_allclose(hv, central, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(oracle.hessian(x), hessian, rtol=1e-11, atol=1e-13)


def test_logistic_oracle_is_stable_for_huge_margins():
    A = scipy.sparse.csr_matrix(np.array([[1.0], [-1.0]]))
    oracle = LogisticOracle(A, [1, 0])
    assert oracle.value(np.array([1000.0])) == pytest.approx(0.0, abs=1e-300)
    assert oracle.value(np.array([-1000.0])) == pytest.approx(1000.0, rel=1e-14)
    assert np.all(np.isfinite(oracle.gradient(np.array([-1000.0]))))
    assert oracle.hvp(np.array([1000.0]), np.array([1.0]))[0] == pytest.approx(0.0, abs=1e-300)


def test_logistic_labels_are_normalized_and_checked():
    dense, labels, oracle = small_logistic(l2=0.0)
    zero_one = LogisticOracle(dense, (labels > 0).astype(float))
    x = RNG.normal(size=7)
    assert zero_one.value(x) == pytest.approx(oracle.value(x), rel=1e-14)
    with pytest.raises(ValueError, match="b must hold labels"):
        LogisticOracle(dense, np.where(labels > 0, 2.0, 0.0))
    with pytest.raises(ValueError, match="b must have shape"):
        LogisticOracle(dense, labels[:-1])
    with pytest.raises(ValueError, match="l2"):
        LogisticOracle(dense, labels, l2=-1.0)


def test_logistic_counters_partial_derivatives_and_coordinate_trial():
    dense, labels, oracle = small_logistic(l2=0.3)
    x = RNG.normal(size=7)
    oracle.value(x)
    oracle.gradient(x)
    oracle.hvp(x, x)
    oracle.hvp(x, x)
    assert oracle.counts() == {"values": 1, "gradients": 1, "hvps": 2}
    index = np.array([5, 1, 3])
    full_hessian = oracle.hessian(x)
    assert oracle.hvps == 2 + 7
    np.testing.assert_allclose(oracle.partial_hessian(x, index), full_hessian[np.ix_(index, index)], rtol=1e-12)
    assert oracle.hvps == 2 + 7 + 3
    np.testing.assert_allclose(oracle.partial_gradient(x, index), oracle.gradient(x)[index], rtol=1e-12)
    assert oracle.gradients == 3
    s = np.array([0.5, -1.0, 2.0])
    moved, value = oracle.coordinate_trial(x, index, s)
    expected = x.copy()
    expected[index] += s
    np.testing.assert_array_equal(moved, expected)
    assert value == pytest.approx(LogisticOracle(dense, labels, 0.3).value(expected), rel=1e-13)
    with pytest.raises(ValueError, match="index must hold distinct"):
        oracle.coordinate_trial(x, np.array([1, 1]), s[:2])
    oracle.reset_counts()
    assert oracle.counts() == {"values": 0, "gradients": 0, "hvps": 0}


def test_logistic_cache_follows_the_point():
    """The margins cache must not serve a stale point (in-place change, or a new equal-valued array)."""
    dense, labels, oracle = small_logistic(l2=0.0)
    reference = LogisticOracle(dense, labels)
    x = RNG.normal(size=7)
    first = oracle.value(x)
    x[0] += 1.0  # mutate a writeable array in place
    assert oracle.value(x) == pytest.approx(reference.value(x), rel=1e-14)
    assert oracle.value(x) != first


def test_lipschitz_bound():
    dense, labels, oracle = small_logistic(l2=0.2)
    expected = np.linalg.norm(dense, 2) ** 2 / (4 * dense.shape[0]) + 0.2
    assert oracle.lipschitz_bound() == pytest.approx(expected, rel=1e-8)
    for _ in range(5):
        top = np.linalg.eigvalsh(oracle.hessian(RNG.normal(size=7)))[-1]
        assert top <= oracle.lipschitz_bound() * (1 + 1e-10)
    problem = w8a_like(scale=0.02, seed=3)
    big = problem.oracle()
    assert big.lipschitz_bound() == pytest.approx(
        np.linalg.norm(problem.A.toarray(), 2) ** 2 / (4 * problem.n), rel=1e-8
    )


def test_torch_oracle_hvp_gradient_and_counters():
    d = 6
    H, _, _ = random_symmetric(d, RNG)

    def loss(x):
        Ht = torch.tensor(H)
        return 0.5 * x @ (Ht @ x) + torch.log(torch.cosh(x)).sum() + 0.25 * (x @ x) ** 2

    oracle = TorchOracle(loss, d)
    x = torch.tensor(RNG.normal(size=d))
    v = torch.tensor(RNG.normal(size=d))
    hessian = torch.func.hessian(loss)(x)
    torch.testing.assert_close(oracle.hvp(x, v), hessian @ v, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(oracle.gradient(x), torch.func.grad(loss)(x), rtol=1e-13, atol=1e-13)
    assert isinstance(oracle.value(x), float)
    np.testing.assert_allclose(oracle.hessian(x), hessian.numpy(), rtol=1e-12, atol=1e-12)
    assert oracle.counts() == {"values": 1, "gradients": 1, "hvps": 1 + d}
    assert oracle.vector("x0", np.ones(d)).dtype == torch.float64
    with pytest.raises(ValueError, match="x0 must have shape"):
        oracle.vector("x0", torch.ones(d + 1))
    with pytest.raises(ValueError, match="x0 must contain only finite"):
        oracle.vector("x0", torch.full((d,), float("nan")))


def test_quadratic_oracle():
    H, _, _ = random_symmetric(5, RNG, [1.0, 2.0, 3.0, 4.0, 5.0])
    c = RNG.normal(size=5)
    for matrix in (H, scipy.sparse.csr_matrix(H), scipy.sparse.linalg.aslinearoperator(H)):
        oracle = QuadraticOracle(matrix, c)
        x = RNG.normal(size=5)
        assert oracle.value(x) == pytest.approx(0.5 * x @ H @ x - c @ x, rel=1e-13)
        np.testing.assert_allclose(oracle.gradient(x), H @ x - c, rtol=1e-12)
        np.testing.assert_allclose(oracle.hessian(x), H, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(oracle.minimizer(), np.linalg.solve(H, c), rtol=1e-9)
    with pytest.raises(ValueError, match="H must be symmetric"):
        QuadraticOracle(np.triu(np.ones((3, 3))))
    with pytest.raises(ValueError, match="H must be a square"):
        QuadraticOracle(np.ones((2, 3)))


# ---------------------------------------------------------------------------- Lanczos


def test_lanczos_relations_for_small_m():
    A, _, _ = random_symmetric(60, RNG)
    v = RNG.normal(size=60)
    result = lanczos(lambda u: A @ u, v, 8)
    V = result.basis
    assert V.shape == (60, 8) and result.hvps == 8 and result.steps == 8 and not result.invariant
    np.testing.assert_allclose(V.T @ V, np.eye(8), atol=1e-13)
    np.testing.assert_allclose(V.T @ A @ V, result.tridiagonal(), atol=1e-12)
    np.testing.assert_allclose(V[:, 0] * result.start_norm, v, rtol=1e-13)
    assert np.all(result.beta > 0)


def test_lanczos_ritz_values_converge_to_extreme_eigenvalues():
    eigenvalues = np.concatenate([[-3.0], np.linspace(0.0, 1.0, 198), [5.0]])
    A, lam, _ = random_symmetric(200, RNG, eigenvalues)
    result = lanczos(lambda u: A @ u, RNG.normal(size=200), 25)
    ritz = result.ritz_values()
    assert ritz[-1] == pytest.approx(5.0, abs=1e-9)
    assert ritz[0] == pytest.approx(-3.0, abs=1e-9)
    assert np.all(ritz <= 5.0 + 1e-12) and np.all(ritz >= -3.0 - 1e-12)


def test_lanczos_loses_orthogonality_without_reorthogonalization():
    A = np.diag(np.geomspace(1.0, 1e-6, 300))
    v = np.ones(300)
    plain = lanczos(lambda u: A @ u, v, 120, breakdown_tol=0.0)
    full = lanczos(lambda u: A @ u, v, 120, reorthogonalize=True, breakdown_tol=0.0)
    assert np.abs(plain.basis.T @ plain.basis - np.eye(plain.steps)).max() > 1e-2
    assert np.abs(full.basis.T @ full.basis - np.eye(full.steps)).max() < 1e-12
    # the plain recurrence produces spurious copies of converged Ritz values ("ghosts")
    top_plain = plain.ritz_values()[-3:]
    assert np.sum(np.isclose(top_plain, 1.0, rtol=1e-8)) >= 2
    assert np.sum(np.isclose(full.ritz_values(), 1.0, rtol=1e-8)) == 1


def test_lanczos_stops_on_an_invariant_subspace():
    A, _, _ = random_symmetric(50, RNG, np.repeat([1.0, 4.0, 10.0], [20, 20, 10]))
    result = lanczos(lambda u: A @ u, RNG.normal(size=50), 10)
    assert result.steps == 3 and result.hvps == 3 and result.invariant
    np.testing.assert_allclose(result.ritz_values(), [1.0, 4.0, 10.0], rtol=1e-10)
    assert lanczos(lambda u: A @ u, RNG.normal(size=50), 10, breakdown_tol=0.0).steps > 3


def test_lanczos_numpy_and_torch_agree():
    A, _, _ = random_symmetric(30, RNG)
    v = RNG.normal(size=30)
    At = torch.tensor(A)
    with_numpy = lanczos(lambda u: A @ u, v, 6)
    with_torch = lanczos(lambda u: At @ u, torch.tensor(v), 6)
    assert isinstance(with_torch.basis, torch.Tensor) and tuple(with_torch.basis.shape) == (30, 6)
    np.testing.assert_allclose(with_torch.alpha, with_numpy.alpha, rtol=1e-12)
    np.testing.assert_allclose(with_torch.beta, with_numpy.beta, rtol=1e-12)
    np.testing.assert_allclose(with_torch.basis.numpy(), with_numpy.basis, atol=1e-12)
    full_numpy = lanczos(lambda u: A @ u, v, 6, reorthogonalize=True)
    full_torch = lanczos(lambda u: At @ u, torch.tensor(v), 6, reorthogonalize=True)
    np.testing.assert_allclose(full_torch.alpha, full_numpy.alpha, rtol=1e-12)
    np.testing.assert_allclose(full_torch.beta, full_numpy.beta, rtol=1e-12)


def test_lanczos_validation():
    with pytest.raises(ValueError, match="v must be a non-zero"):
        lanczos(lambda u: u, np.zeros(3), 2)
    with pytest.raises(ValueError, match="m must be"):
        lanczos(lambda u: u, np.ones(3), 0)
    with pytest.raises(ValueError, match="v must contain only finite"):
        lanczos(lambda u: u, np.array([1.0, np.inf]), 2)


# ---------------------------------------------------------------------------- cubic subproblem


def brute_force_cubic(g, H, M, rng, starts=12):
    best = None
    for _ in range(starts):
        result = minimize(
            lambda s: cubic_model(g, H, M, s), rng.normal(size=g.size) * 3, method="BFGS", options={"gtol": 1e-11}
        )
        if best is None or result.fun < best.fun:
            best = result
    return best


def assert_optimal(solution, g, H, M):
    d = g.size
    s = solution.s
    np.testing.assert_allclose((H + solution.r * np.eye(d)) @ s, -g, atol=1e-9 * (1 + np.linalg.norm(g)))
    assert solution.r == pytest.approx(M * np.linalg.norm(s), rel=1e-9, abs=1e-12)
    assert np.linalg.eigvalsh(H + solution.r * np.eye(d))[0] >= -1e-9
    assert solution.model_value == pytest.approx(cubic_model(g, H, M, s), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_cubic_matches_brute_force_on_random_instances(seed):
    rng = np.random.default_rng(100 + seed)
    d = 1 + seed % 4
    H, _, _ = random_symmetric(d, rng)  # indefinite in general
    g = rng.normal(size=d)
    M = rng.uniform(0.2, 5.0)
    solution = solve_cubic(g, H, M)
    assert_optimal(solution, g, H, M)
    assert solution.model_value <= brute_force_cubic(g, H, M, rng).fun + 1e-9


def test_cubic_convention_is_m_over_three():
    assert CUBIC_DENOMINATOR == 3
    # 1-D: m(s) = g s + ½ h s² + (M/3)|s|³, checked on a fine grid.
    g, h, M = 1.5, -0.7, 2.0
    grid = np.linspace(-3, 3, 600_001)
    values = g * grid + 0.5 * h * grid**2 + M / 3 * np.abs(grid) ** 3
    solution = solve_cubic(np.array([g]), np.array([[h]]), M)
    assert solution.s[0] == pytest.approx(grid[np.argmin(values)], abs=2e-5)
    assert solution.model_value == pytest.approx(values.min(), abs=1e-9)
    # 2-D grid with an indefinite H
    H = np.array([[1.0, 0.3], [0.3, -2.0]])
    g2 = np.array([0.4, 0.2])
    axis = np.linspace(-3, 3, 1501)  # the minimizer has norm r/M ≥ −λ_min ≈ 2.03
    S1, S2 = np.meshgrid(axis, axis, indexing="ij")
    values2 = (
        g2[0] * S1
        + g2[1] * S2
        + 0.5 * (H[0, 0] * S1**2 + 2 * H[0, 1] * S1 * S2 + H[1, 1] * S2**2)
        + 1.0 / 3 * (S1**2 + S2**2) ** 1.5
    )
    solution2 = solve_cubic(g2, H, 1.0)
    assert solution2.model_value <= values2.min() + 1e-12
    assert solution2.model_value == pytest.approx(values2.min(), abs=1e-4)
    assert np.linalg.norm(solution2.s) > 2.0


def test_cubic_hard_case():
    lam = np.array([-2.0, -2.0, 1.0, 3.0])
    H, _, Q = random_symmetric(4, RNG, lam)
    g = Q @ np.array([0.0, 0.0, 0.5, 1.0])  # orthogonal to the λ_min eigenspace
    # ‖(H + 2I)⁺g‖ = ‖(0.5/3, 1/5)‖ ≈ 0.26: the hard case when 2/M exceeds it (M < 7.7)
    for M, hard in ((0.5, True), (2.0, True), (5.0, True), (10.0, False)):
        solution = solve_cubic(g, H, M)
        assert solution.hard_case == hard
        assert (solution.r == pytest.approx(2.0, rel=1e-12)) == hard
        assert_optimal(solution, g, H, M)
        assert solution.model_value <= brute_force_cubic(g, H, M, RNG).fun + 1e-9
    # g = 0 with negative curvature: a step of length −λ_min/M along the eigenvector
    solution = solve_cubic(np.zeros(4), H, 4.0)
    assert solution.hard_case and np.linalg.norm(solution.s) == pytest.approx(0.5, rel=1e-12)
    assert solution.model_value < 0
    # g = 0 and H ⪰ 0: no step
    assert np.linalg.norm(solve_cubic(np.zeros(2), np.eye(2), 1.0).s) == 0.0
    # nearly hard: a tiny component along the eigenvector, still optimal
    g_near = g + 1e-7 * Q[:, 0]
    solution = solve_cubic(g_near, H, 2.0)
    assert not solution.hard_case
    assert_optimal(solution, g_near, H, 2.0)


def test_cubic_tridiagonal_equals_dense():
    alpha = RNG.normal(size=7)
    beta = RNG.uniform(0.1, 1.0, size=6)
    T = np.diag(alpha) + np.diag(beta, 1) + np.diag(beta, -1)
    g = np.zeros(7)
    g[0] = 1.7
    for M in (1e-3, 0.3, 30.0):
        tri = solve_cubic_tridiagonal(g, alpha, beta, M)
        dense = solve_cubic(g, T, M)
        np.testing.assert_allclose(tri.s, dense.s, rtol=1e-10, atol=1e-12)
        assert tri.r == pytest.approx(dense.r, rel=1e-10)
        assert_optimal(tri, g, T, M)
    single = solve_cubic_tridiagonal([2.0], [3.0], [], 1.0)
    assert_optimal(single, np.array([2.0]), np.array([[3.0]]), 1.0)


def test_cubic_reuses_one_eigendecomposition_for_many_M():
    H, _, _ = random_symmetric(5, RNG)
    g = RNG.normal(size=5)
    problem = CubicSubproblem.from_dense(g, H)
    for M in (0.01, 1.0, 100.0):
        warm = problem.solve(M, r0=problem.solve(2 * M).r)
        np.testing.assert_allclose(warm.s, solve_cubic(g, H, M).s, rtol=1e-10, atol=1e-13)


def test_cubic_cg_equals_dense_on_spd():
    B = RNG.normal(size=(40, 40))
    H = B @ B.T / 40 + 1e-3 * np.eye(40)
    g = RNG.normal(size=40)
    for M in (1e-3, 1.0, 100.0):
        calls = []

        def hvp(v):
            calls.append(1)
            return H @ v

        cg = solve_cubic_cg(hvp, g, M)
        dense = solve_cubic(g, H, M)
        np.testing.assert_allclose(cg.s, dense.s, rtol=1e-8, atol=1e-10)
        assert cg.model_value == pytest.approx(dense.model_value, rel=1e-9)
        assert cg.hvps == len(calls) > 0
    torch_cg = solve_cubic_cg(lambda v: torch.tensor(H) @ v, torch.tensor(g), 1.0)
    np.testing.assert_allclose(torch_cg.s.numpy(), solve_cubic(g, H, 1.0).s, rtol=1e-8, atol=1e-10)
    with pytest.raises(ValueError, match="convex"):
        solve_cubic_cg(lambda v: -v, np.ones(3), 1e-6)


def test_cubic_validation():
    with pytest.raises(ValueError, match="M must be"):
        solve_cubic(np.ones(2), np.eye(2), 0.0)
    with pytest.raises(ValueError, match="g must have shape"):
        solve_cubic(np.ones(3), np.eye(2), 1.0)
    with pytest.raises(ValueError, match="H must be a square"):
        solve_cubic(np.ones(2), np.ones((2, 3)), 1.0)
    with pytest.raises(ValueError, match="beta must have shape"):
        solve_cubic_tridiagonal(np.ones(3), np.ones(3), np.ones(3), 1.0)
    with pytest.raises(ValueError, match="H must contain only finite"):
        solve_cubic(np.ones(2), np.array([[1.0, np.nan], [np.nan, 1.0]]), 1.0)


# ---------------------------------------------------------------------------- problem generators


def test_w8a_like_shapes_density_labels_and_determinism():
    problem = w8a_like(scale=0.1, seed=0)
    assert problem.A.shape == (4975, 30)
    assert problem.density == pytest.approx(0.039, rel=0.1)
    assert set(np.unique(problem.A.data)) == {1.0}
    assert problem.positive_fraction == pytest.approx(0.03, abs=0.01)
    again = w8a_like(scale=0.1, seed=0)
    assert (again.A != problem.A).nnz == 0 and np.array_equal(again.b, problem.b)
    other = w8a_like(scale=0.1, seed=1)
    assert (other.A != problem.A).nnz > 0


@pytest.mark.parametrize(
    "generator, n, d, density, positive",
    [
        (rcv1_like, 20_242, 47_236, 0.0016, 0.52),
        (news20_like, 19_996, 1_355_191, 450 / 1_355_191, 0.5),
    ],
)
def test_text_like_generators(generator, n, d, density, positive):
    problem = generator(scale=0.05, seed=0, l2=1e-4)
    assert problem.A.shape == (round(n * 0.05), round(d * 0.05))
    assert problem.density == pytest.approx(density, rel=0.15)
    assert problem.A.data.min() > 0
    row_norms = np.sqrt(np.asarray(problem.A.multiply(problem.A).sum(axis=1)).ravel())
    np.testing.assert_allclose(row_norms, 1.0, rtol=1e-12)
    assert problem.positive_fraction == pytest.approx(positive, abs=0.03)
    assert problem.oracle().l2 == 1e-4
    again = generator(scale=0.05, seed=0)
    assert (again.A != problem.A).nnz == 0 and np.array_equal(again.b, problem.b)


def test_text_like_features_all_occur():
    problem = rcv1_like(scale=0.2, seed=2)
    assert np.all(problem.A.getnnz(axis=0) > 0)
    assert problem.density == pytest.approx(0.0016, rel=0.05)


def test_generator_validation():
    with pytest.raises(ValueError, match="scale"):
        w8a_like(scale=0.0)
    with pytest.raises(ValueError, match="scale"):
        rcv1_like(scale=1.5)
    with pytest.raises(ValueError, match="l2"):
        news20_like(scale=0.001, l2=-1.0)


@pytest.mark.parametrize("d, dense_limit", [(60, 2000), (203, 50)])
def test_quadratic_with_spectrum(d, dense_limit):
    H = quadratic_with_spectrum(d, [0.5, 2.0, 7.0], counts=[d - 23, 20, 3], seed=4, dense_limit=dense_limit)
    dense = H.toarray() if scipy.sparse.issparse(H) else H
    assert scipy.sparse.issparse(H) == (d > dense_limit)
    np.testing.assert_allclose(dense, dense.T, atol=1e-14)
    expected = np.sort(np.repeat([0.5, 2.0, 7.0], [d - 23, 20, 3]))
    np.testing.assert_allclose(np.linalg.eigvalsh(dense), expected, atol=1e-11)
    assert np.count_nonzero(np.abs(dense) > 1e-14) > 2 * d  # not diagonal: coordinates are mixed
    with pytest.raises(ValueError, match="counts must sum"):
        quadratic_with_spectrum(10, [1.0, 2.0], counts=[3, 3])


def test_logistic_with_spectrum_is_the_same_in_every_dimension():
    small = logistic_with_spectrum(200, n=120, rank=20, l2=1e-3, seed=5)
    large = logistic_with_spectrum(20_000, n=120, rank=20, l2=1e-3, seed=5)
    for problem in (small, large):
        singular = np.linalg.svd(problem.A[:, problem.info["support"]].toarray(), compute_uv=False)
        np.testing.assert_allclose(singular, np.sqrt(4 * 120) * np.geomspace(1, 0.01, 20), rtol=1e-10)
    np.testing.assert_array_equal(small.b, large.b)
    assert not np.array_equal(small.info["support"], large.info["support"]) or small.d != large.d
    # the same point on the active coordinates: the same loss, the same non-trivial Hessian spectrum
    w = RNG.normal(size=20)
    points = []
    for problem in (small, large):
        x = np.zeros(problem.d)
        x[problem.info["support"]] = w
        points.append((problem.oracle(), x))
    (o_small, x_small), (o_large, x_large) = points
    assert o_small.value(x_small) == pytest.approx(o_large.value(x_large), rel=1e-13)
    block_small = o_small.partial_hessian(x_small, small.info["support"])
    block_large = o_large.partial_hessian(x_large, large.info["support"])
    np.testing.assert_allclose(np.linalg.eigvalsh(block_small), np.linalg.eigvalsh(block_large), rtol=1e-11)
    with pytest.raises(ValueError, match="d must be >= rank"):
        logistic_with_spectrum(10, rank=20)


@pytest.mark.parametrize("law", ["uniform", "log-uniform"])
def test_quadratic_with_law_fixes_the_law_L_and_the_distance(law):
    problems = [quadratic_with_law(d, law, smoothness=2.0, distance=3.0, condition=100.0, seed=1) for d in (40, 400)]
    for problem in problems:
        d = problem.d
        expected = 2.0 * (np.arange(1, d + 1) / d if law == "uniform" else np.geomspace(0.01, 1.0, d))
        assert scipy.sparse.issparse(problem.H)  # the same block structure at every d
        np.testing.assert_allclose(np.linalg.eigvalsh(problem.H.toarray()), expected, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(np.sort(problem.eigenvalues), expected, rtol=1e-14)
        assert problem.smoothness == pytest.approx(2.0, rel=1e-14)
        assert problem.distance == pytest.approx(3.0, rel=1e-14)
        assert problem.effective_dimension == pytest.approx(expected.sum() / 2.0, rel=1e-12)
        oracle = problem.oracle()
        assert oracle.value(np.zeros(d)) == 0.0  # x* = 0, f* = 0
        np.testing.assert_array_equal(oracle.gradient(np.zeros(d)), np.zeros(d))
    # the effective dimension grows in proportion to d
    ratio = problems[1].effective_dimension / problems[0].effective_dimension
    assert 9.5 < ratio < 10.0  # (d + 1)/2 for the uniform law, about d/ln(condition) for the other
    again = quadratic_with_law(40, law, smoothness=2.0, distance=3.0, condition=100.0, seed=1)
    np.testing.assert_array_equal(again.x0, problems[0].x0)
    assert (again.H != problems[0].H).nnz == 0
    other = quadratic_with_law(40, law, smoothness=2.0, distance=3.0, condition=100.0, seed=2)
    assert not np.array_equal(other.x0, problems[0].x0)


def test_quadratic_with_law_validation():
    with pytest.raises(ValueError, match="law must be one of"):
        quadratic_with_law(10, "gaussian")
    with pytest.raises(ValueError, match="d must be"):
        quadratic_with_law(1)
    with pytest.raises(ValueError, match="condition"):
        quadratic_with_law(10, "log-uniform", condition=0.5)
    with pytest.raises(ValueError, match="distance"):
        quadratic_with_law(10, distance=0.0)


@pytest.mark.parametrize("sparse", [False, True])
def test_quadratic_partial_derivatives_read_H(sparse):
    dense = random_symmetric(30, RNG)[0]
    c = RNG.normal(size=30)
    oracle = QuadraticOracle(scipy.sparse.csr_matrix(dense) if sparse else dense, c)
    generic = QuadraticOracle(scipy.sparse.linalg.aslinearoperator(dense), c)  # the base-class fallbacks
    x, index = RNG.normal(size=30), np.array([3, 17, 4, 29])
    np.testing.assert_allclose(oracle.partial_gradient(x, index), (dense @ x - c)[index], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(oracle.partial_gradient(x, index), generic.partial_gradient(x, index), atol=1e-13)
    np.testing.assert_allclose(oracle.partial_hessian(x, index), dense[np.ix_(index, index)], atol=1e-15)
    np.testing.assert_allclose(oracle.partial_hessian(x, index), generic.partial_hessian(x, index), atol=1e-13)
    assert oracle.counts() == {"values": 0, "gradients": 2, "hvps": 8}  # no product with H was needed
    with pytest.raises(ValueError, match="distinct coordinates"):
        oracle.partial_hessian(x, np.array([1, 1]))
