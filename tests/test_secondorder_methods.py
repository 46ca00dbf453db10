"""Cubic-Newton methods: CRN, Krylov CRN and SSCN, their shared line search, trace and stopping rules."""

import numpy as np
import pytest
import scipy.sparse
import torch
from scipy.optimize import minimize

from reprobook.secondorder import (
    M_FLOOR_RATIO,
    LogisticOracle,
    QuadraticOracle,
    TorchOracle,
    crn,
    krylov_crn,
    logistic_with_spectrum,
    quadratic_with_spectrum,
    rcv1_like,
    sscn,
    trust_krylov,
    w8a_like,
)

RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def logistic():
    """A small sparse logistic problem (n = 202, d = 472, nearly separable, so l2 = 1e-3) and its minimum."""
    problem = rcv1_like(scale=0.01, seed=3, l2=1e-3)
    oracle = problem.oracle()
    reference = LogisticOracle(problem.A, problem.b, problem.l2)
    x0 = np.full(problem.d, 0.5)
    result = minimize(
        lambda x: (reference.value(x), reference.gradient(x)),
        x0,
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-13, "ftol": 1e-16, "maxiter": 20_000},
    )
    return oracle, x0, result


def spectral_quadratic(d=60, seed=0):
    H = quadratic_with_spectrum(d, [0.5, 3.0, 20.0], seed=seed)
    c = np.random.default_rng(seed).normal(size=d)
    return QuadraticOracle(H, c)


def assert_line_search_invariant(trace):
    assert np.all(trace.model_decrease[1:] >= 0)
    # G5, exact (no tolerance): the acceptance test in the same floating-point operations
    assert np.all(trace.objective[1:] <= trace.objective[:-1] - trace.model_decrease[1:])


@pytest.mark.parametrize("method", ["krylov", "crn-dense", "crn-cg", "sscn"])
def test_methods_decrease_monotonically_and_converge(logistic, method):
    oracle, x0, reference = logistic
    if method == "krylov":
        trace = krylov_crn(oracle, x0, m=10, iterations=100, tolerance=1e-9)
    elif method == "crn-dense":
        trace = crn(oracle, x0, iterations=50, tolerance=1e-9, solver="dense")
    elif method == "crn-cg":
        trace = crn(oracle, x0, iterations=50, tolerance=1e-9, solver="cg")
    else:
        trace = sscn(oracle, x0, m=10, iterations=250, tolerance=0.0)
    assert_line_search_invariant(trace)
    if method == "sscn":  # d/m = 47 coordinate blocks: progress, not convergence, in 250 iterations
        assert trace.objective[-1] < trace.objective[0] - 0.9 * (trace.objective[0] - reference.fun)
        return
    assert trace.stop_reason == "tolerance"
    assert trace.objective[-1] == pytest.approx(reference.fun, abs=1e-12)
    np.testing.assert_allclose(trace.x, reference.x, atol=1e-6)


def test_krylov_crn_equals_crn_when_the_hessian_has_few_eigenvalues():
    """G1: ∇²f = H has 3 distinct eigenvalues, so K_5(H, g) contains the full CRN step."""
    oracle = spectral_quadratic()
    x0 = np.ones(oracle.dim)
    for iterations in (1, 2, 4, 8):
        krylov = krylov_crn(oracle, x0, m=5, M0=20.0, iterations=iterations, tolerance=0.0)
        full = crn(oracle, x0, M0=20.0, iterations=iterations, tolerance=0.0, solver="dense")
        assert len(krylov.objective) == len(full.objective) == iterations + 1
        np.testing.assert_allclose(krylov.x, full.x, rtol=0, atol=1e-10)
        np.testing.assert_allclose(krylov.objective, full.objective, rtol=1e-13)
        np.testing.assert_array_equal(krylov.M, full.M)
        assert np.all(krylov.subspace[1:] == 3)  # Lanczos stops on the invariant subspace
    assert krylov.hvps[-1] == 3 * 8 and full.hvps[-1] == oracle.dim * 8
    assert np.linalg.norm(full.x - oracle.minimizer()) < 0.05 * np.linalg.norm(x0 - oracle.minimizer())
    with_cg = crn(oracle, x0, M0=20.0, iterations=8, tolerance=0.0, solver="cg")
    np.testing.assert_allclose(with_cg.x, full.x, atol=1e-8)


def test_krylov_crn_on_torch_equals_crn_on_a_quartic():
    """The generic torch path: f(x) = ½xᵀHx + ¼‖x‖⁴ keeps the iterates in a 3-dimensional invariant subspace."""
    d = 30
    H = torch.tensor(quadratic_with_spectrum(d, [1.0, 2.0, 5.0], seed=2))

    def loss(x):
        return 0.5 * x @ (H @ x) + 0.25 * (x @ x) ** 2

    oracle = TorchOracle(loss, d)
    x0 = torch.linspace(-1.0, 1.0, d, dtype=torch.float64)
    krylov = krylov_crn(oracle, x0, m=5, iterations=6, tolerance=0.0)
    full = crn(oracle, x0, iterations=6, tolerance=0.0, solver="dense")
    assert isinstance(krylov.x, torch.Tensor) and krylov.x.dtype == torch.float64
    np.testing.assert_allclose(krylov.x.numpy(), full.x.numpy(), atol=1e-9)
    np.testing.assert_allclose(krylov.objective, full.objective, rtol=1e-11, atol=1e-14)
    assert_line_search_invariant(krylov)
    assert krylov.objective[-1] < 1e-3 * krylov.objective[0]


def test_torch_and_numpy_oracles_give_the_same_krylov_iterates():
    problem = w8a_like(scale=0.05, seed=1, l2=1e-3)
    A = torch.tensor(problem.A.toarray())
    y = torch.tensor(2.0 * problem.b - 1.0)

    def loss(x):
        return torch.nn.functional.softplus(-y * (A @ x)).mean() + 0.5e-3 * (x @ x)

    x0 = np.full(problem.d, 0.5)
    numpy_trace = krylov_crn(problem.oracle(), x0, m=4, iterations=5, tolerance=0.0)
    torch_trace = krylov_crn(TorchOracle(loss, problem.d), x0, m=4, iterations=5, tolerance=0.0)
    np.testing.assert_allclose(torch_trace.objective, numpy_trace.objective, rtol=1e-12)
    np.testing.assert_allclose(torch_trace.x.numpy(), numpy_trace.x, atol=1e-9)


def test_sscn_with_all_coordinates_takes_the_crn_step():
    problem = w8a_like(scale=0.02, seed=2, l2=1e-3)
    oracle = problem.oracle()
    x0 = np.full(problem.d, 0.5)
    coordinate = sscn(oracle, x0, m=problem.d, iterations=1, tolerance=0.0)
    full = crn(oracle, x0, iterations=1, tolerance=0.0, solver="dense")
    np.testing.assert_allclose(coordinate.x, full.x, rtol=0, atol=1e-10)
    assert coordinate.objective[1] == pytest.approx(full.objective[1], rel=1e-13)
    assert coordinate.hvps[1] == full.hvps[1] == problem.d


def test_sscn_is_deterministic_and_uses_the_generic_fallback():
    problem = w8a_like(scale=0.02, seed=2, l2=1e-3)
    x0 = np.full(problem.d, 0.5)
    first = sscn(problem.oracle(), x0, m=2, seed=5, iterations=10, tolerance=0.0)
    second = sscn(problem.oracle(), x0, m=2, seed=5, iterations=10, tolerance=0.0)
    np.testing.assert_array_equal(first.objective, second.objective)
    assert not np.array_equal(first.objective, sscn(problem.oracle(), x0, m=2, seed=6, iterations=10).objective)
    # the same run through a torch oracle: partial derivatives from HVPs and full gradients
    A = torch.tensor(problem.A.toarray())
    y = torch.tensor(2.0 * problem.b - 1.0)
    generic = TorchOracle(lambda x: torch.nn.functional.softplus(-y * (A @ x)).mean() + 0.5e-3 * (x @ x), problem.d)
    through_torch = sscn(generic, x0, m=2, seed=5, iterations=10, tolerance=0.0)
    np.testing.assert_allclose(through_torch.objective, first.objective, rtol=1e-12)
    np.testing.assert_array_equal(through_torch.hvps, first.hvps)


def test_krylov_crn_iterates_do_not_depend_on_the_dimension():
    """With x0 = 0 the Krylov spaces stay on the active coordinates: the same run for d = 200 and d = 50,000."""
    runs = []
    for d in (200, 50_000):
        problem = logistic_with_spectrum(d, n=150, rank=20, l2=1e-4, seed=4)
        trace = krylov_crn(problem.oracle(), np.zeros(d), m=5, iterations=12, tolerance=0.0)
        runs.append((problem, trace))
    (small, small_trace), (large, large_trace) = runs
    np.testing.assert_allclose(small_trace.objective, large_trace.objective, rtol=1e-12)
    np.testing.assert_allclose(small_trace.x[small.info["support"]], large_trace.x[large.info["support"]], atol=1e-10)
    assert np.count_nonzero(large_trace.x) <= 20


def test_trace_counters_and_stopping_rules():
    oracle = spectral_quadratic(d=40)
    x0 = np.ones(40)
    oracle.reset_counts()
    trace = krylov_crn(oracle, x0, m=2, iterations=3, tolerance=0.0)
    assert trace.stop_reason == "iterations" and len(trace.objective) == 4
    assert trace.hvps[-1] == oracle.hvps == 6 and np.all(np.diff(trace.hvps) == 2)
    assert trace.gradients[-1] == oracle.gradients == 4  # one per recorded point
    assert trace.values[-1] == oracle.values
    assert np.all(np.diff(trace.time) >= 0) and trace.time[0] >= 0
    for name in ("gradient_norm", "M", "step_norm", "backtracks", "subspace", "model_decrease"):
        assert len(getattr(trace, name)) == 4
    assert trace.M[0] == 1e-3 and trace.step_norm[0] == 0
    np.testing.assert_allclose(trace.gradient_norm[0], np.linalg.norm(oracle.gradient(x0)))

    assert krylov_crn(oracle, x0, tolerance=1e6).stop_reason == "tolerance"
    timed = krylov_crn(oracle, x0, time_limit=1e-12)
    assert timed.stop_reason == "time_limit" and len(timed.objective) == 1
    # The step rule fires on the first accepted step shorter than step_tolerance. With 1e-3 that
    # step still decreases f by far more than f's round-off, so no kernel's rounding can make
    # the line search fail first (with 1e-6 it could: near x*, f(x + s) and f(x) agree to their
    # last bits, and which rule fires first depends on how the CPU's BLAS rounds).
    converged = crn(oracle, x0, iterations=200, tolerance=0.0, step_tolerance=1e-3)
    assert converged.stop_reason == "step_norm"
    assert converged.step_norm[-1] < 1e-3 <= converged.step_norm[1:-1].min()
    assert converged.model_decrease[-1] > 1e3 * np.finfo(float).eps * abs(converged.objective[-1])

    class Rejecting(QuadraticOracle):
        """f jumps up away from x0, so no step is ever accepted."""

        def _value(self, x):
            return super()._value(x) + (0.0 if np.array_equal(x, x0) else 1e12)

    rejecting = Rejecting(oracle.H, oracle.c)
    failed = krylov_crn(rejecting, x0, m=3, max_backtracks=4)
    assert failed.stop_reason == "line_search" and len(failed.objective) == 1
    assert failed.values[-1] == 1 + 5 and failed.hvps[-1] == 3
    np.testing.assert_array_equal(failed.x, x0)
    assert failed.accepted.tolist() == [True]
    # SSCN skips a failed block instead of stopping: x stays, M keeps the largest value tried
    skipped = sscn(rejecting, x0, m=3, iterations=4, max_backtracks=2, tolerance=0.0)
    assert skipped.stop_reason == "iterations" and len(skipped.objective) == 5
    np.testing.assert_array_equal(skipped.x, x0)
    assert skipped.accepted.tolist() == [True, False, False, False, False]
    np.testing.assert_array_equal(skipped.backtracks, [0, 2, 2, 2, 2])
    np.testing.assert_allclose(skipped.M, 1e-3 * np.array([1, 2, 4, 8, 16]))
    assert skipped.values[-1] == 1 + 4 * 3


def test_line_search_doublings_and_the_floor_of_M():
    # pseudo-Huber f(x) = Σ √(1 + x_i²) ≥ d: far out the Newton model promises more decrease
    # than f can give, so small M is rejected and the line search must double M many times
    oracle = TorchOracle(lambda x: torch.sqrt(1.0 + x * x).sum(), 3)
    x0 = np.full(3, 5.0)
    capped = crn(oracle, x0, M0=1e-3, iterations=5, max_backtracks=3)
    assert capped.stop_reason == "line_search" and len(capped.objective) == 1
    enough = crn(oracle, x0, M0=1e-3, iterations=5, max_backtracks=40)
    assert enough.stop_reason in ("iterations", "tolerance") and enough.backtracks[1] > 3
    assert enough.accepted.all() and enough.objective[-1] < 3.0 + 1e-6
    assert_line_search_invariant(enough)
    # on a linear f every step is accepted with margin (M/3)‖s‖³, so M halves down to its floor
    linear = QuadraticOracle(np.zeros((3, 3)), np.array([1.0, -2.0, 0.5]))
    trace = krylov_crn(linear, np.zeros(3), m=1, iterations=60, tolerance=0.0)
    assert trace.accepted.all() and trace.stop_reason == "iterations"
    assert trace.M.min() == trace.M[-1] == pytest.approx(M_FLOOR_RATIO * 1e-3, rel=1e-12)
    assert np.all(np.diff(trace.objective) < 0)


def test_sscn_counts_partial_hessians_as_m_hvps_and_excludes_monitoring():
    problem = w8a_like(scale=0.02, seed=2, l2=1e-3)
    oracle = problem.oracle()
    trace = sscn(oracle, np.zeros(problem.d), m=3, iterations=5, tolerance=0.0)
    np.testing.assert_array_equal(trace.hvps, 3 * np.arange(6))
    np.testing.assert_array_equal(trace.gradients, np.arange(6))  # partial gradients only
    assert oracle.gradients == 5 + 6  # plus one monitored full gradient per recorded point
    quiet = sscn(problem.oracle(), np.zeros(problem.d), m=3, iterations=5, tolerance=0.0, monitor=False)
    assert np.isfinite(quiet.gradient_norm[0]) and np.all(np.isnan(quiet.gradient_norm[1:]))
    np.testing.assert_array_equal(quiet.objective, trace.objective)


def test_methods_validate_their_arguments():
    oracle = spectral_quadratic(d=10)
    x0 = np.ones(10)
    for method in (krylov_crn, sscn):
        with pytest.raises(ValueError, match="m must be <= d"):
            method(oracle, x0, m=11)
        with pytest.raises(ValueError, match="m must be"):
            method(oracle, x0, m=0)
    for method in (krylov_crn, crn, sscn):
        with pytest.raises(ValueError, match="M0"):
            method(oracle, x0, M0=0.0)
        with pytest.raises(ValueError, match="M0"):
            method(oracle, x0, M0=-1.0)
        with pytest.raises(ValueError, match="x0 must contain only finite"):
            method(oracle, np.full(10, np.nan))
        with pytest.raises(ValueError, match="x0 must have shape"):
            method(oracle, np.ones(9))
        with pytest.raises(ValueError, match="iterations"):
            method(oracle, x0, iterations=-1)
        with pytest.raises(ValueError, match="tolerance"):
            method(oracle, x0, tolerance=-1.0)
        with pytest.raises(ValueError, match="time_limit"):
            method(oracle, x0, time_limit=0.0)
        with pytest.raises(ValueError, match="max_backtracks"):
            method(oracle, x0, max_backtracks=-1)
        with pytest.raises(TypeError, match="oracle must be an Oracle"):
            method(lambda x: x, x0)
    with pytest.raises(ValueError, match="solver"):
        crn(oracle, x0, solver="newton")
    with pytest.raises(ValueError, match="seed"):
        sscn(oracle, x0, m=2, seed=-1)
    with pytest.raises(TypeError, match="m must be an integer"):
        krylov_crn(oracle, x0, m=2.5)


def test_cg_crn_rejects_nonconvex_problems():
    H = np.diag([1.0, -1.0, 2.0])
    with pytest.raises(ValueError, match="convex"):
        crn(QuadraticOracle(H, np.ones(3)), np.zeros(3), solver="cg", M0=1e-6)
    # the dense solver handles the saddle: it escapes along the negative curvature
    trace = crn(QuadraticOracle(H, np.array([1.0, 0.0, 1.0])), np.zeros(3), solver="dense", iterations=5)
    assert trace.objective[-1] < trace.objective[0] - 1.0 and abs(trace.x[1]) > 1.0
    assert_line_search_invariant(trace)
    assert scipy.sparse.issparse(quadratic_with_spectrum(30, [1.0], dense_limit=10))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_krylov_crn_on_cuda_matches_cpu():
    H = quadratic_with_spectrum(50, [0.5, 2.0, 9.0, 30.0], seed=3)

    def make(device):
        Ht = torch.tensor(H, device=device)
        return TorchOracle(lambda x: 0.5 * x @ (Ht @ x) + 0.25 * (x @ x) ** 2, 50, device=device)

    x0 = np.linspace(-1.0, 1.0, 50)
    on_cpu = krylov_crn(make("cpu"), x0, m=6, iterations=5, tolerance=0.0)
    on_cuda = krylov_crn(make("cuda"), x0, m=6, iterations=5, tolerance=0.0)
    assert on_cuda.x.device.type == "cuda"
    np.testing.assert_allclose(on_cuda.x.cpu().numpy(), on_cpu.x.numpy(), atol=1e-10)
    np.testing.assert_allclose(on_cuda.objective, on_cpu.objective, rtol=1e-12)


def test_shakespeare_ngram_problem_is_real_sparse_text():
    import numpy as np

    from reprobook.secondorder import krylov_crn, shakespeare_ngram_logistic

    problem = shakespeare_ngram_logistic(n_features=2**16, ngram_range=(1, 2), l2=1e-4)
    assert problem.d == 2**16 and problem.n > 10_000
    assert 0.3 < problem.positive_fraction < 0.7
    norms = np.sqrt(np.asarray(problem.A.multiply(problem.A).sum(axis=1))).ravel()
    assert np.allclose(norms[norms > 0], 1.0)
    trace = krylov_crn(problem.oracle(), np.zeros(problem.d), m=10, iterations=5)
    assert np.all(np.diff(trace.objective) <= 0) and trace.objective[-1] < trace.objective[0]
    with pytest.raises(ValueError, match="ngram_range"):
        shakespeare_ngram_logistic(ngram_range=(2, 1))


@pytest.mark.parametrize("method", [krylov_crn, crn, sscn])
def test_f_target_stops_at_the_first_iterate_below_it(logistic, method):
    oracle, x0, _ = logistic
    options = {"iterations": 30, "tolerance": 0.0}
    if method is sscn:
        options["seed"] = 3
    full = method(oracle, x0, **options)
    target = 0.5 * (full.objective[5] + full.objective[6])  # reached first at k = 6
    assert full.objective[5] > target >= full.objective[6]
    stopped = method(oracle, x0, f_target=target, **options)
    assert stopped.stop_reason == "f_target" and len(stopped.objective) == 7
    np.testing.assert_array_equal(stopped.objective, full.objective[:7])
    np.testing.assert_array_equal(stopped.hvps, full.hvps[:7])
    assert stopped.iterations_to(0.0, target) == 6 and stopped.hvps_to(0.0, target) == full.hvps[6]
    assert stopped.hvps_to(0.0, full.objective[-1] - 1.0) is None
    assert stopped.hvps_to(0.0, full.objective[-1] - 1.0, lower_bound=True) == stopped.hvps[-1]
    assert method(oracle, x0, f_target=1e9, **options).stop_reason == "f_target"  # f(x0) is below it


def test_trust_krylov_trace_converges_and_counts(logistic):
    oracle, x0, reference = logistic
    oracle.reset_counts()
    # SciPy's trust-krylov is not bit-reproducible (see its docstring): the checks below hold for
    # any of its runs, and a tighter gtol can stall it near the minimum
    trace = trust_krylov(oracle, x0, iterations=200, tolerance=1e-6)
    assert trace.method == "trust-krylov" and trace.stop_reason == "tolerance"
    assert trace.gradient_norm[-1] < 1e-6
    assert trace.objective[-1] == pytest.approx(reference.fun, abs=1e-10)
    assert oracle.value(trace.x) == trace.objective[-1]
    np.testing.assert_allclose(trace.x, reference.x, atol=1e-4)
    # a trust-region method never accepts an increase; rejected steps leave x where it was
    assert np.all(np.diff(trace.objective) <= 0.0)
    assert np.all(trace.step_norm[~trace.accepted] == 0.0) and np.all(trace.step_norm[1:][trace.accepted[1:]] > 0)
    # counters: cumulative, and all of what the oracle served beyond the (uncounted) monitoring
    assert np.all(np.diff(trace.hvps) >= 0) and trace.hvps[0] == 0
    np.testing.assert_array_equal(np.cumsum(trace.subspace), trace.hvps)
    assert trace.hvps[-1] == oracle.hvps
    assert trace.gradients[-1] == oracle.gradients - len(trace.objective)
    assert np.all(np.isnan(trace.M)) and np.all(trace.backtracks == 0)


def test_trust_krylov_stops_at_the_target_and_solves_a_quadratic():
    oracle = spectral_quadratic()
    x_star = oracle.minimizer()
    f_star = oracle.value(x_star)
    x0 = np.zeros(oracle.dim)
    solved = trust_krylov(oracle, x0, iterations=50, tolerance=1e-10)
    assert solved.stop_reason == "tolerance"
    np.testing.assert_allclose(solved.x, x_star, atol=1e-8)
    target = f_star + 1e-3 * (solved.objective[0] - f_star)
    stopped = trust_krylov(oracle, x0, iterations=50, tolerance=0.0, f_target=target)
    assert stopped.stop_reason == "f_target" and stopped.objective[-1] <= target < stopped.objective[-2]
    assert trust_krylov(oracle, x0, iterations=0).stop_reason == "iterations"
    assert trust_krylov(oracle, x0, f_target=solved.objective[0]).stop_reason == "f_target"
    with pytest.raises(ValueError, match="max_trust_radius"):
        trust_krylov(oracle, x0, initial_trust_radius=2.0, max_trust_radius=1.0)
    with pytest.raises(ValueError, match="f_target"):
        trust_krylov(oracle, x0, f_target=float("nan"))
    with pytest.raises(TypeError, match="oracle must be an Oracle"):
        trust_krylov(np.eye(3), x0)
