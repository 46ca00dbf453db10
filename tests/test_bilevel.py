"""Bi-level methods and problem instances: known answers, special cases, independent checks."""

import numpy as np
import pytest
from scipy.linalg import null_space
from scipy.optimize import linprog, minimize
from scipy.sparse.linalg import svds

from reprobook.optim import (
    BilevelProblem,
    bigsam,
    bipg,
    bisg,
    breast_cancer_logistic_l1,
    classification_accuracy,
    fbipg,
    fista_fixed_regularization,
    fista_momentum,
    fit_envelope_rate,
    fit_rate,
    is_linearly_separable,
    iterations_to_reach,
    nemirovski_instance,
    nemirovski_matrix,
    product_grid,
    project_box,
    prox_box_plus_squared,
    proximal_gradient,
    regularization_weight,
    run_grid,
    sparse_linear_inverse,
    tail_supremum,
    zero_function,
    zero_gradient,
)

X_STAR = np.array([1.0, 1.0, 1.0, 1.0, 50.0, 50.0, 50.0])


def box_least_squares(outer_weight_prox):
    """½‖Ax − b‖² over the box [−1, 1]⁵ (g = its indicator), a small full-rank instance.

    With ``outer_weight_prox`` the outer is ½‖x‖² (through the joint prox); otherwise ω ≡ 0.
    """
    rng = np.random.default_rng(1)
    A, b = rng.normal(size=(8, 5)), 3.0 * rng.normal(size=8)

    def box_indicator(x):
        return 0.0 if np.all(np.abs(x) <= 1.0) else np.inf

    if outer_weight_prox:
        outer, outer_subgradient = (lambda x: 0.5 * float(x @ x)), (lambda x: x)

        def prox(v, step, eta):
            return prox_box_plus_squared(v, step, eta, -1.0, 1.0)
    else:
        outer, outer_subgradient = zero_function, zero_gradient

        def prox(v, step, eta):
            return project_box(v, -1.0, 1.0)

    problem = BilevelProblem(
        name="box least squares",
        dim=5,
        inner_smooth=lambda x: 0.5 * float((A @ x - b) @ (A @ x - b)),
        inner_grad=lambda x: A.T @ (A @ x - b),
        inner_lipschitz=float(np.linalg.norm(A, 2) ** 2),
        outer=outer,
        outer_subgradient=outer_subgradient,
        prox=prox,
        inner_nonsmooth=box_indicator,
    )
    return problem, A, b


# --- schedules and rates -------------------------------------------------------------------------


def test_schedule_closed_forms():
    k = np.arange(5)
    np.testing.assert_allclose(regularization_weight(k, a=3.0, gamma=1.5), (k + 3.0) ** -1.5)
    np.testing.assert_allclose(regularization_weight(k, a=2.0, gamma=2.0), [1 / 4, 1 / 9, 1 / 16, 1 / 25, 1 / 36])
    # α_k = (t_k − 1)/t_{k+1} with t_k = (k + a)/a: 0, 1/5, 2/6, 3/7, 4/8 for a = 3.
    np.testing.assert_allclose(fista_momentum(k, a=3.0), [0.0, 1 / 5, 2 / 6, 3 / 7, 4 / 8])
    t = (k + 3.0) / 3.0
    np.testing.assert_allclose(fista_momentum(k[:-1], a=3.0), (t[:-1] - 1) / t[1:])
    np.testing.assert_allclose(regularization_weight(k, a=3.0, gamma=0.5, c=10.0), 10.0 / np.sqrt(k + 3.0))


def test_fit_rate_recovers_a_power_law_and_skips_non_positive_values():
    k = np.arange(0, 1001)
    values = 3.0 * np.maximum(k, 1.0) ** -2.0
    assert fit_rate(k, values, 10, 1000) == pytest.approx(-2.0, abs=1e-12)
    values[500:] = 0.0  # below floating-point resolution: left out
    assert fit_rate(k, values, 10, 1000) == pytest.approx(-2.0, abs=1e-12)
    with pytest.raises(ValueError, match="at least 2 points"):
        fit_rate(k, values, 600, 1000)


def test_tail_supremum_against_brute_force():
    values = np.random.default_rng(9).normal(size=50)
    expected = [values[k:].max() for k in range(50)]
    np.testing.assert_array_equal(tail_supremum(values), expected)
    assert np.all(np.diff(tail_supremum(values)) <= 0)


def test_fit_envelope_rate_of_oscillating_and_vanishing_values():
    k = np.arange(0, 2001)
    # An oscillation under the envelope 1/k: the raw values touch it once per period.
    values = np.sin(0.3 * k) ** 2 / np.maximum(k, 1)
    assert fit_envelope_rate(k, values, 100, 2000) == pytest.approx(-1.0, abs=0.02)
    assert fit_envelope_rate(k, np.where(k < 50, 1.0, 0.0), 100, 2000) == -np.inf  # vanished
    assert fit_envelope_rate(k, 2.0 * np.maximum(k, 1) ** -0.5, 10, 2000) == pytest.approx(-0.5, abs=1e-12)
    with pytest.raises(ValueError, match="non-negative"):
        fit_envelope_rate(k, -values, 100, 2000)


def test_iterations_to_reach():
    assert iterations_to_reach([5.0, 3.0, 1.0, 2.0, 0.5], 1.5) == 2
    assert iterations_to_reach([5.0, 3.0], 5.0) == 0
    assert iterations_to_reach([5.0, 3.0], 1.0) is None


# --- grids of settings ----------------------------------------------------------------------------


def test_product_grid_order_and_validation():
    grid = product_grid(gamma=[1.0, 2.0], c=[1.0, 10.0, 100.0])
    assert len(grid) == 6
    assert grid[0] == {"gamma": 1.0, "c": 1.0} and grid[1] == {"gamma": 1.0, "c": 10.0}
    assert grid[-1] == {"gamma": 2.0, "c": 100.0}
    with pytest.raises(ValueError, match="gamma must hold at least one value"):
        product_grid(gamma=[])
    with pytest.raises(TypeError, match="c must be a list"):
        product_grid(c=1.0)


def test_run_grid_keeps_each_setting_and_picks_the_best():
    problem = nemirovski_instance("l1")
    gammas = [0.75, 1.0, 1.5]
    grid_run = run_grid(fbipg, problem, product_grid(gamma=gammas), iterations=300)
    assert grid_run.method == "FBi-PG" and len(grid_run.traces) == 3
    separate = [fbipg(problem, iterations=300, gamma=g) for g in gammas]
    for trace, alone in zip(grid_run.traces, separate):
        np.testing.assert_array_equal(trace.x, alone.x)
    distances = [t.distances[-1] for t in separate]
    setting, trace = grid_run.best(lambda t: t.distances[-1])
    assert setting == {"gamma": gammas[int(np.argmin(distances))]}
    assert trace.distances[-1] == min(distances)
    with pytest.raises(ValueError, match="may not repeat the common arguments"):
        run_grid(fbipg, problem, [{"iterations": 5}], iterations=5)
    with pytest.raises(ValueError, match="NaN"):
        grid_run.best(lambda t: np.nan)


# --- special cases and first steps by hand --------------------------------------------------------


def test_fbipg_with_zero_outer_is_fista_step_by_step():
    problem, A, b = box_least_squares(outer_weight_prox=False)
    step, a, iterations = 1.0 / problem.inner_lipschitz, 4.0, 30
    x0 = np.full(5, 0.5)
    iterates = []
    fbipg(problem, x0, iterations, a=a, gamma=1.5, callback=lambda k, x: iterates.append(x.copy()))

    # FISTA with t_k = (k + a)/a on ½‖Ax − b‖² + indicator of the box, written independently.
    x_previous, x, t = x0.copy(), x0.copy(), 1.0
    for k in range(iterations):
        t_next = (k + 1 + a) / a
        y = x + (t - 1.0) / t_next * (x - x_previous)
        x_previous, x, t = x, np.clip(y - step * A.T @ (A @ y - b), -1.0, 1.0), t_next
        np.testing.assert_allclose(iterates[k], x, rtol=1e-12, atol=1e-12)


def test_bipg_and_fbipg_share_the_first_step_then_differ():
    problem = nemirovski_instance("l1")
    x0 = np.random.default_rng(2).normal(size=7)
    np.testing.assert_array_equal(bipg(problem, x0, 1).x, fbipg(problem, x0, 1).x)
    assert not np.allclose(bipg(problem, x0, 2).x, fbipg(problem, x0, 2).x)


def test_fbipg_first_step_by_hand():
    problem = nemirovski_instance("l1")
    x0 = np.random.default_rng(3).normal(size=7)
    A, target = nemirovski_matrix(), np.eye(7)[0]
    step, eta = 1.0 / problem.inner_lipschitz, 3.0**-1.5
    v = x0 - step * A.T @ (A @ x0 - target)
    expected = 50.0 + np.sign(v - 50.0) * np.maximum(np.abs(v - 50.0) - step * eta, 0.0)
    np.testing.assert_allclose(fbipg(problem, x0, 1).x, expected, rtol=1e-12)
    # The scale c multiplies the weight, hence the soft-threshold; Bi-PG's first step is the same.
    scaled = 50.0 + np.sign(v - 50.0) * np.maximum(np.abs(v - 50.0) - step * 10.0 * eta, 0.0)
    np.testing.assert_allclose(bipg(problem, x0, 1, c=10.0).x, scaled, rtol=1e-12)
    assert not np.allclose(scaled, expected)


def test_proximal_gradient_steps_and_limit_with_a_box():
    problem, A, b = box_least_squares(outer_weight_prox=False)
    x0 = np.full(5, 0.5)
    step = 1.0 / problem.inner_lipschitz
    np.testing.assert_allclose(
        proximal_gradient(problem, x0, 1).x, np.clip(x0 - step * A.T @ (A @ x0 - b), -1.0, 1.0), rtol=1e-12
    )
    trace = proximal_gradient(problem, x0, 3000)
    assert trace.method == "PG (inner only)"
    assert np.all(np.diff(trace.inner_values) <= 1e-12)  # a step 1/L_f decreases φ
    reference = minimize(
        lambda x: 0.5 * np.sum((A @ x - b) ** 2),
        np.zeros(5),
        jac=lambda x: A.T @ (A @ x - b),
        method="L-BFGS-B",
        bounds=[(-1.0, 1.0)] * 5,
        options={"ftol": 1e-15, "gtol": 1e-12},
    )
    np.testing.assert_allclose(trace.x, reference.x, atol=1e-6)


def test_default_steps():
    problem = nemirovski_instance("quadratic")  # L_ω = 1
    x0 = np.random.default_rng(8).normal(size=7)
    safe = 1.0 / (problem.inner_lipschitz + 3.0**-1.5)  # 1/(L_f + η_0 L_ω)
    for method in (fbipg, bipg):
        np.testing.assert_array_equal(method(problem, x0, 3).x, method(problem, x0, 3, step=safe).x)
    fixed_step = 1.0 / (problem.inner_lipschitz + 0.5)
    np.testing.assert_array_equal(
        fista_fixed_regularization(problem, x0, 3, eta=0.5).x,
        fista_fixed_regularization(problem, x0, 3, eta=0.5, step=fixed_step).x,
    )
    for method in (bisg, bigsam):
        np.testing.assert_array_equal(
            method(problem, x0, 3).x, method(problem, x0, 3, step=1.0 / problem.inner_lipschitz).x
        )


def test_bisg_first_step_by_hand():
    problem = nemirovski_instance("l1")
    x0 = np.random.default_rng(4).normal(size=7)
    A, target = nemirovski_matrix(), np.eye(7)[0]
    step = 1.0 / problem.inner_lipschitz
    y = x0 - step * A.T @ (A @ x0 - target)
    expected = y - 0.5 * step * np.sign(y - 50.0)  # t_0 = c·s/1^α with c = 0.5
    np.testing.assert_allclose(bisg(problem, x0, 1, c=0.5).x, expected, rtol=1e-12)


def test_bigsam_first_two_steps_by_hand():
    problem = nemirovski_instance("quadratic")
    A, target = nemirovski_matrix(), np.eye(7)[0]
    step = 1.0 / problem.inner_lipschitz
    x = np.random.default_rng(5).normal(size=7)
    for beta in [1.0, 2.0 / 3.0]:  # β_1 = min(1, 2/2), β_2 = 2/3
        y = x - step * A.T @ (A @ x - target)
        z = x - 0.5 * (x - 50.0)  # outer step t = 0.5
        x = beta * z + (1 - beta) * y
    x0 = np.random.default_rng(5).normal(size=7)
    np.testing.assert_allclose(bigsam(problem, x0, 2, outer_step=0.5).x, x, rtol=1e-12)


# --- fixed regularization: the limit is the regularized minimizer, not x* -------------------------


def test_fista_fixed_regularization_reaches_the_regularized_minimizer_with_a_box():
    problem, A, b = box_least_squares(outer_weight_prox=True)
    eta = 0.3
    trace = fista_fixed_regularization(problem, iterations=3000, eta=eta)
    reference = minimize(
        lambda x: 0.5 * np.sum((A @ x - b) ** 2) + 0.5 * eta * x @ x,
        np.zeros(5),
        jac=lambda x: A.T @ (A @ x - b) + eta * x,
        method="L-BFGS-B",
        bounds=[(-1.0, 1.0)] * 5,
        options={"ftol": 1e-15, "gtol": 1e-12},
    )
    assert np.any(np.abs(reference.x) == 1.0)  # the box is active: g matters
    np.testing.assert_allclose(trace.x, reference.x, atol=1e-6)


def test_fista_fixed_regularization_is_biased_on_the_nemirovski_instance():
    problem, eta = nemirovski_instance("quadratic"), 0.1
    A, target = nemirovski_matrix(), np.eye(7)[0]
    # argmin ½‖Ax − e₁‖² + (η/2)‖x − 50·𝟙‖²  solves (AᵀA + ηI)x = Aᵀe₁ + 50η𝟙.
    regularized = np.linalg.solve(A.T @ A + eta * np.eye(7), A.T @ target + 50.0 * eta)
    trace = fista_fixed_regularization(problem, iterations=3000, eta=eta)
    np.testing.assert_allclose(trace.x, regularized, atol=1e-8)
    assert trace.distances[-1] > 1.0  # a fixed η stays away from x*


# --- the Nemirovski instance ----------------------------------------------------------------------


def test_nemirovski_solution_by_an_independent_computation():
    A, target = nemirovski_matrix(), np.eye(7)[0]
    assert A.shape == (7, 7)
    np.testing.assert_array_equal(np.diag(A), [1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(np.diag(A, -1), [-1, -1, -1, 0, 0, 0])
    # X* = x_ls + null(A): minimum-norm least-squares solution plus the null space.
    particular = np.linalg.lstsq(A, target, rcond=None)[0]
    basis = null_space(A)
    np.testing.assert_allclose(A @ particular, target, atol=1e-12)
    assert basis.shape == (7, 3)
    center = np.full(7, 50.0)
    # ℓ1: min Σu  s.t.  −u ≤ particular + basis·τ − 50 ≤ u, a linear program in (τ, u).
    identity = np.eye(7)
    lp = linprog(
        np.r_[np.zeros(3), np.ones(7)],
        A_ub=np.block([[basis, -identity], [-basis, -identity]]),
        b_ub=np.r_[center - particular, particular - center],
        bounds=[(None, None)] * 3 + [(0, None)] * 7,
        method="highs",
    )
    # quadratic: min ½‖particular + basis·τ − 50‖² with orthonormal columns: τ = basisᵀ(50 − particular).
    tau = basis.T @ (center - particular)
    for outer, minimizer, omega_star in [
        ("l1", particular + basis @ lp.x[:3], 196.0),
        ("quadratic", particular + basis @ tau, 0.5 * 4 * 49.0**2),
    ]:
        problem = nemirovski_instance(outer)
        np.testing.assert_allclose(minimizer, X_STAR, atol=1e-8)
        np.testing.assert_array_equal(problem.solution, X_STAR)
        assert problem.outer_optimum == omega_star == pytest.approx(problem.outer(minimizer))
        assert problem.inner_optimum == 0.0 == problem.inner(X_STAR)


def test_fbipg_on_nemirovski_fast_inner_rate():
    problem = nemirovski_instance("l1")
    trace = fbipg(problem, iterations=2000, a=3.0, gamma=1.5)
    gap = trace.inner_gap(problem)
    assert gap[-1] < 1e-8 * gap[0]  # measured 3.7e-9 · gap[0]
    assert fit_rate(trace.iterations, gap, 100, 2000) < -2.0  # at least the paper's O(1/k²); measured −3.0
    np.testing.assert_allclose(trace.x[:4], 1.0, atol=5e-4)  # x₀..x₃ sit on X*
    assert gap[-1] < bisg(problem, iterations=2000).inner_gap(problem)[-1] / 100


def test_fbipg_on_nemirovski_approaches_x_star():
    # The outer pulls the free coordinates x₄..x₆ only through η_k, so they move like Σ_k k·η_k ~ k^{2−γ}:
    # after 2000 iterations γ = 1.1 is close to x* while γ = 1.5 has barely started (distance ≈ 74).
    problem = nemirovski_instance("l1")
    trace = fbipg(problem, iterations=2000, a=3.0, gamma=1.1)
    assert trace.distances[0] == pytest.approx(np.linalg.norm(X_STAR))
    assert trace.distances[-1] < 4.0  # measured 2.96, from 86.6
    assert 0.0 < trace.outer_gap(problem)[-1] < 6.0  # measured 5.1, from 154: still above ω*
    np.testing.assert_array_equal(trace.outer_excess(problem), np.maximum(trace.outer_gap(problem), 0.0))
    assert trace.outer_gap(problem).min() < 0.0  # on the way, some iterates undershoot ω*
    assert fbipg(problem, iterations=2000, a=3.0, gamma=1.5).distances[-1] > 70.0


def test_bipg_regularized_objective_is_non_increasing():
    # With s ≤ 1/(L_f + η_k L_ω) a proximal-gradient step decreases F_k = φ + η_k ω, and η_{k+1} ≤ η_k
    # with ω ≥ 0 gives F_{k+1}(x^{k+1}) ≤ F_k(x^{k+1}) ≤ F_k(x^k).
    for problem in (nemirovski_instance("l1"), nemirovski_instance("quadratic")):
        trace = bipg(problem, iterations=1000, gamma=1.5)
        weights = regularization_weight(trace.iterations, 3.0, 1.5)
        objective = trace.inner_values + weights * trace.outer_values
        assert np.all(np.diff(objective) <= 1e-12 * objective[:-1])


def test_bigsam_converges_toward_x_star_on_the_quadratic_variant():
    problem = nemirovski_instance("quadratic")
    trace = bigsam(problem, iterations=2000)
    assert np.all(np.diff(trace.distances[1:]) <= 0.0)
    assert trace.distances[-1] < 3.0  # measured 2.67
    assert trace.distances[2000] < 0.6 * trace.distances[1000]  # O(1/k): measured ratio 0.51


# --- the sparse linear inverse problem ------------------------------------------------------------


@pytest.mark.parametrize("condition_number", [None, 1000.0])
def test_sparse_linear_inverse_basis_pursuit_solution(condition_number):
    problem = sparse_linear_inverse(m=200, n=500, condition_number=condition_number)
    A, b, x_true = problem.data["A"], problem.data["b"], problem.data["x_true"]
    assert A.shape == (200, 500) and np.count_nonzero(x_true) == 50
    assert np.max(np.abs(A @ problem.solution - b)) < 1e-8
    np.testing.assert_allclose(problem.solution, x_true, atol=1e-6)  # exact recovery
    assert problem.outer_optimum == pytest.approx(np.abs(x_true).sum(), rel=1e-9)
    assert not problem.solution.flags.writeable  # shared by the cache
    assert sparse_linear_inverse(m=200, n=500, condition_number=condition_number) is problem
    assert problem.inner_lipschitz == pytest.approx(np.linalg.norm(A, 2) ** 2, rel=1e-12)


def test_ill_conditioned_singular_values_and_orthonormal_factors():
    problem = sparse_linear_inverse(m=30, n=80, seed=2, condition_number=100.0)
    singular = np.linalg.svd(problem.data["A"], compute_uv=False)
    np.testing.assert_allclose(singular, np.geomspace(1.0, 0.01, 30), rtol=1e-10)
    assert problem.inner_lipschitz == pytest.approx(1.0, rel=1e-10)
    gaussian = sparse_linear_inverse(m=30, n=80, seed=2)
    assert np.linalg.cond(gaussian.data["A"]) < 10.0 < np.linalg.cond(problem.data["A"])
    assert problem.name != gaussian.name
    with pytest.raises(ValueError, match="condition_number must be a finite number >= 1"):
        sparse_linear_inverse(m=30, n=80, condition_number=0.5)
    with pytest.raises(ValueError, match="m must be <= n"):
        sparse_linear_inverse(m=90, n=80, condition_number=10.0)


@pytest.mark.parametrize("condition_number", [None, 100.0])
def test_sparse_linear_inverse_against_a_second_lp_formulation(condition_number):
    problem = sparse_linear_inverse(m=15, n=40, nonzeros=10, seed=7, condition_number=condition_number)
    A, b = problem.data["A"], problem.data["b"]
    n = A.shape[1]
    # min Σ t  s.t.  −t ≤ x ≤ t,  Ax = b,  over (x, t).
    identity = np.eye(n)
    result = linprog(
        np.r_[np.zeros(n), np.ones(n)],
        A_ub=np.block([[identity, -identity], [-identity, -identity]]),
        b_ub=np.zeros(2 * n),
        A_eq=np.hstack([A, np.zeros_like(A)]),
        b_eq=b,
        bounds=[(None, None)] * n + [(0, None)] * n,
        method="highs",
    )
    assert problem.outer_optimum == pytest.approx(result.fun, rel=1e-7)
    assert problem.outer_optimum < np.abs(problem.data["x_true"]).sum()  # too few rows to recover x_true


def test_sparse_linear_inverse_is_deterministic_for_its_seed():
    first = sparse_linear_inverse(m=10, n=30, seed=3)
    second = sparse_linear_inverse.__wrapped__(m=10, n=30, seed=3)
    np.testing.assert_array_equal(first.data["A"], second.data["A"])
    assert not np.array_equal(first.data["A"], sparse_linear_inverse(m=10, n=30, seed=4).data["A"])


def test_fbipg_approaches_the_basis_pursuit_solution_from_below():
    problem = sparse_linear_inverse(m=200, n=500)
    trace = fbipg(problem, iterations=2000, gamma=1.0)
    assert trace.distances[500] < 0.1 * trace.distances[0]
    assert trace.distances[-1] < 1e-2 * trace.distances[0]
    assert trace.inner_gap(problem)[-1] < 1e-4
    # x_0 = 0 has ω = 0 < ω*: the signed gap starts at −ω*, and infeasible iterates stay below ω*.
    assert trace.outer_gap(problem)[0] == -problem.outer_optimum
    assert np.all(trace.outer_gap(problem) < 0) and np.all(trace.outer_excess(problem) == 0)


def test_acceleration_shows_on_the_ill_conditioned_problem():
    # Singular values from 1 to 1e-3: within 2000 iterations plain gradient steps reduce the inner gap
    # like 1/k, FISTA like 1/k² (and FBi-PG with a fast-vanishing weight too), Bi-PG does not.
    problem = sparse_linear_inverse(m=200, n=500, condition_number=1000.0)
    k = np.arange(2001)

    def slope(trace):
        return fit_rate(k, trace.inner_gap(problem), 100, 2000)

    assert slope(proximal_gradient(problem, iterations=2000)) > -1.2
    assert slope(fista_fixed_regularization(problem, iterations=2000, eta=0.0)) < -1.9
    assert slope(fbipg(problem, iterations=2000, gamma=2.0)) < -1.9
    assert slope(bipg(problem, iterations=2000, gamma=2.0)) > -1.5


# --- the breast-cancer logistic problem -----------------------------------------------------------


@pytest.fixture(scope="module")
def breast_cancer():
    return breast_cancer_logistic_l1()


def test_breast_cancer_shapes_and_split(breast_cancer):
    data = breast_cancer.data
    assert data["A_train"].shape == (455, 5456) and data["A_test"].shape == (114, 5456)
    assert breast_cancer.dim == 5456
    np.testing.assert_array_equal(data["A_train"][:, -1], 1.0)  # the bias column
    np.testing.assert_allclose(data["A_train"][:, :-1].mean(axis=0), 0.0, atol=1e-10)  # scaled on train
    assert set(np.unique(data["y_train"])) == {-1.0, 1.0}
    assert breast_cancer.inner(np.zeros(5456)) == pytest.approx(np.log(2.0))
    assert data["separable"] and breast_cancer.inner_optimum == 0.0


def test_breast_cancer_gradient_matches_finite_differences(breast_cancer):
    rng = np.random.default_rng(6)
    x = 0.01 * rng.normal(size=breast_cancer.dim)
    gradient, h = breast_cancer.inner_grad(x), 1e-5
    for _ in range(3):
        direction = rng.normal(size=breast_cancer.dim)
        central = (breast_cancer.inner_smooth(x + h * direction) - breast_cancer.inner_smooth(x - h * direction)) / (
            2 * h
        )
        assert central == pytest.approx(gradient @ direction, rel=1e-6, abs=1e-9)


def test_breast_cancer_lipschitz_constant_is_valid_and_tight(breast_cancer):
    rng = np.random.default_rng(7)
    lipschitz, grad = breast_cancer.inner_lipschitz, breast_cancer.inner_grad
    for scale in (0.001, 0.1):
        x, y = scale * rng.normal(size=(2, breast_cancer.dim))
        assert np.linalg.norm(grad(x) - grad(y)) <= lipschitz * np.linalg.norm(x - y)
    # At 0 the Hessian is AᵀA/(4n): along the top right singular vector the bound is attained.
    top = svds(breast_cancer.data["A_train"], k=1)[2][0]
    epsilon = 1e-6
    ratio = np.linalg.norm(grad(epsilon * top) - grad(-epsilon * top)) / (2 * epsilon)
    assert ratio == pytest.approx(lipschitz, rel=1e-6)


def test_separability_and_accuracy_on_small_data():
    A = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    assert is_linearly_separable(A, [-1, -1, 1, 1])
    assert not is_linearly_separable(A, [-1, 1, -1, 1])
    assert classification_accuracy(A, [-1, -1, 1, 1], [1.0, -1.5]) == 1.0
    assert classification_accuracy(A, [-1, -1, 1, 1], [1.0, -0.5]) == 0.75  # scores −0.5, 0.5, 1.5, 2.5


# --- traces and input validation ------------------------------------------------------------------


def test_trace_records_every_iteration_and_gaps_need_references():
    problem = nemirovski_instance("l1")
    trace = fbipg(problem, iterations=5)
    assert trace.inner_values.shape == trace.outer_values.shape == trace.distances.shape == (6,)
    assert trace.inner_values[-1] == problem.inner(trace.x) and trace.method == "FBi-PG"
    unknown, _, _ = box_least_squares(outer_weight_prox=False)
    trace = bipg(unknown, iterations=2)
    assert trace.distances is None
    with pytest.raises(ValueError, match="inner_optimum"):
        trace.inner_gap(unknown)
    with pytest.raises(ValueError, match="outer_optimum"):
        trace.outer_gap(unknown)


METHODS = [fbipg, bipg, bisg, fista_fixed_regularization, bigsam, proximal_gradient]


def run(method, **kwargs):
    problem = nemirovski_instance("quadratic")
    if method is fista_fixed_regularization:
        kwargs.setdefault("eta", 0.1)
    return method(problem, **kwargs)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(x0=np.zeros(6)), "x0 must have shape"),
        (dict(x0=np.r_[np.zeros(6), np.nan]), "x0 must contain only finite"),
        (dict(iterations=0), "iterations must be an integer >= 1"),
        (dict(step=0.0), "step must be a finite number > 0"),
        (dict(step=-1.0), "step"),
    ],
)
def test_methods_reject_bad_inputs(method, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run(method, **kwargs)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: run(fbipg, a=1.5), "a must be a finite number >= 2"),
        (lambda: run(bipg, a=np.nan), "a must be"),
        (lambda: run(fbipg, gamma=0.0), "gamma must be a finite number > 0"),
        (lambda: run(bipg, gamma=-1.0), "gamma"),
        (lambda: run(bipg, c=0.0), "c must be a finite number > 0"),
        (lambda: run(fista_fixed_regularization, eta=-0.1), "eta"),
        (lambda: run(bisg, alpha=0.5), r"alpha must be a finite number in \(0.5, 1\]"),
        (lambda: run(bisg, alpha=1.2), "alpha"),
        (lambda: run(bisg, c=0.0), "c must be"),
        (lambda: run(bigsam, outer_step=-1.0), "outer_step"),
        (lambda: bigsam(nemirovski_instance("l1")), "problem must have a smooth outer"),
        (lambda: nemirovski_instance("l2"), "outer must be 'l1' or 'quadratic'"),
        (lambda: sparse_linear_inverse(m=10, n=20, nonzeros=21), "nonzeros"),
        (lambda: sparse_linear_inverse(m=0), "m must be"),
        (lambda: regularization_weight(-1), "k must hold non-negative integers"),
        (lambda: fit_rate(np.arange(5), np.ones(4), 1, 4), "values must have shape"),
        (lambda: is_linearly_separable(np.ones((3, 2)), [1, 0, 1]), "y must contain only"),
        (lambda: classification_accuracy(np.ones((3, 2)), [1, 1, 1], np.ones(3)), "x must have shape"),
    ],
)
def test_parameters_are_validated(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_types_are_validated():
    with pytest.raises(TypeError, match="problem must be a BilevelProblem"):
        fbipg("nemirovski")
    with pytest.raises(TypeError, match="iterations must be an integer"):
        run(fbipg, iterations=10.0)
    with pytest.raises(TypeError, match="outer must be a str"):
        nemirovski_instance(1)
    with pytest.raises(TypeError, match="callback must be callable"):
        run(bipg, callback=3)
    problem = nemirovski_instance("l1")
    with pytest.raises(ValueError, match="inner_lipschitz must be a finite number > 0"):
        BilevelProblem(
            name="bad",
            dim=7,
            inner_smooth=problem.inner_smooth,
            inner_grad=problem.inner_grad,
            inner_lipschitz=0.0,
            outer=problem.outer,
            outer_subgradient=problem.outer_subgradient,
            prox=problem.prox,
        )
