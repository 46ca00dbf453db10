"""Deterministic test problems for the cubic-Newton chapter.

The LIBSVM datasets of the Krylov CRN paper (w8a, rcv1, news20) are not available offline,
so three generators build synthetic sparse logistic-regression data with the same shapes
and sparsity (the values are synthetic, not the datasets'):

============  ========  ==========  ==========  ==============================================
generator         n          d       density     features, labels
============  ========  ==========  ==========  ==============================================
w8a_like       49,749         300     3.9 %     binary; ~3 % positive, planted model + noise
rcv1_like      20,242      47,236     0.16 %    TF-IDF-like, rows of unit norm; ~52 % positive
news20_like    19,996   1,355,191     0.033 %   TF-IDF-like (~450 non-zeros a row); ~50 %
============  ========  ==========  ==========  ==============================================

``scale`` ∈ (0, 1] shrinks n and d proportionally (at least 10 rows and 2 columns) and keeps
the density, so a row has density·d non-zeros on average. Each returns a
:class:`LogisticProblem`; its ``l2`` (default 0) is the ridge weight of its oracle. With
n ≪ d (rcv1, news20) the data are (almost surely) linearly separable, so the unregularized
loss has no minimizer (f* = 0 is not attained): give a small l2 for a well-posed problem.

Spectral problems: :func:`quadratic_with_spectrum` (a symmetric H with prescribed
eigenvalues and multiplicities), :func:`quadratic_with_law` (convex quadratics whose d
eigenvalues follow one law on (0, L] for every d, so that the number of directions that
matter grows with d while L and ‖x0 − x*‖ stay fixed) and :func:`logistic_with_spectrum` (a
logistic problem whose data, minimum value and Hessian spectrum do not depend on the
dimension d).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse

from reprobook.checks import check_count, check_real, finite_array
from reprobook.secondorder.oracles import LogisticOracle, QuadraticOracle

#: the spectral laws of :func:`quadratic_with_law`.
SPECTRAL_LAWS = ("uniform", "log-uniform")


@dataclass
class LogisticProblem:
    """Sparse logistic-regression data.

    Attributes:
        name: a label for plots.
        A: the n×d CSR design.
        b: the labels in {0, 1}.
        l2: the ridge weight used by :meth:`oracle`.
        info: generator details (e.g. the planted model or the active coordinates).
    """

    name: str
    A: scipy.sparse.csr_matrix
    b: np.ndarray
    l2: float = 0.0
    info: dict = field(default_factory=dict)

    @property
    def n(self):
        return self.A.shape[0]

    @property
    def d(self):
        return self.A.shape[1]

    @property
    def density(self):
        """nnz(A)/(n·d)."""
        return self.A.nnz / (self.n * self.d)

    @property
    def positive_fraction(self):
        return float(np.mean(self.b))

    def oracle(self, l2=None):
        """A :class:`~reprobook.secondorder.oracles.LogisticOracle` (``l2`` defaults to the problem's)."""
        return LogisticOracle(self.A, self.b, self.l2 if l2 is None else l2)


def _scaled(n, d, scale):
    scale = check_real("scale", scale, 0.0, 1.0, open_lower=True)
    return max(int(round(n * scale)), 10), max(int(round(d * scale)), 2)


def _planted_labels(scores, positive_fraction, label_noise, rng):
    """Labels 1 for the top scores, then a fraction ``label_noise`` flipped at random.

    The threshold is the quantile that makes the expected positive fraction after the flips
    equal ``positive_fraction``.
    """
    target = (positive_fraction - label_noise) / (1.0 - 2.0 * label_noise)
    target = min(max(target, 0.0), 1.0)
    threshold = np.quantile(scores, 1.0 - target)
    labels = (scores > threshold).astype(np.float64)
    flips = rng.random(labels.size) < label_noise
    labels[flips] = 1.0 - labels[flips]
    return labels


def w8a_like(scale=1.0, seed=0, l2=0.0, density=0.039, positive_fraction=0.03, label_noise=0.005):
    """Binary sparse features like LIBSVM w8a: n = 49,749, d = 300 (times ``scale``).

    Feature j is on with probability p_j (log-normal popularities with mean ``density``,
    capped at 0.9), independently per row. Labels: the top scores of a planted Gaussian
    model plus Gaussian noise, then ``label_noise`` of them flipped, with ``positive_fraction``
    positives in expectation.
    """
    n, d = _scaled(49_749, 300, scale)
    density = check_real("density", density, 0.0, 0.5, open_lower=True)
    positive_fraction = check_real("positive_fraction", positive_fraction, 0.0, 1.0, open_lower=True)
    label_noise = check_real("label_noise", label_noise, 0.0, 0.49)
    rng = np.random.default_rng(seed)
    popularity = rng.lognormal(0.0, 1.0, size=d)
    p = np.minimum(density * popularity / popularity.mean(), 0.9)
    p *= density / p.mean()
    A = scipy.sparse.csr_matrix(rng.random((n, d), dtype=np.float32) < p.astype(np.float32), dtype=np.float64)
    planted = rng.normal(size=d)
    scores = A @ planted + 0.5 * rng.normal(size=n)
    b = _planted_labels(scores, positive_fraction, label_noise, rng)
    return LogisticProblem("w8a-like", A, b, check_real("l2", l2, 0.0), {"planted": planted, "seed": seed})


def _text_like(n, d, nnz_per_row, rng, topics=20, topic_share=0.5, chunk=2048):
    """A TF-IDF-like n×d CSR matrix with about ``nnz_per_row`` distinct columns a row.

    A bag-of-words model: row lengths are log-normal (σ = 0.5) around ``nnz_per_row``; a
    token has Zipf(1) rank r = ⌊(d + 1)^u⌋ − 1 (u uniform), shifted for a fraction
    ``topic_share`` of the tokens by the row's topic (one of ``topics`` random offsets, which
    gives the Gram matrix a few dominant directions, as real corpora have); the ranks map to
    columns through a random permutation. A row keeps its first distinct tokens (the
    repeats give the term frequencies tf); columns that no row uses are given to one random
    row each (tf = 1), at most 2 % of the non-zeros, so that at full size every feature
    occurs, as in a real vocabulary (a scaled-down problem keeps unused columns). Values are
    (1 + log tf)·idf with the smoothed idf_j = log((1 + n)/(1 + df_j)) + 1, and each row is
    scaled to unit Euclidean norm.
    """
    lengths = np.clip(np.rint(nnz_per_row * rng.lognormal(-0.125, 0.5, size=n)), 1, d).astype(np.int64)
    permutation = rng.permutation(d)
    shifts = rng.integers(0, d, size=topics)
    topic_of_row = rng.integers(0, topics, size=n)
    index_type = np.int32 if d < 2**31 else np.int64
    col_parts, tf_parts, row_counts = [], [], []
    for first_row in range(0, n, chunk):
        k = lengths[first_row : first_row + chunk]
        row_of_draw = np.repeat(np.arange(k.size, dtype=np.int64), 2 * k + 5)
        rank = np.floor((d + 1.0) ** rng.random(row_of_draw.size)).astype(np.int64) - 1
        topical = rng.random(row_of_draw.size) < topic_share
        rank[topical] += shifts[topic_of_row[first_row + row_of_draw[topical]]]
        keys = row_of_draw * d + permutation[np.minimum(rank % d, d - 1)]
        _, first, tf = np.unique(keys, return_index=True, return_counts=True)
        order = np.argsort(first)  # distinct tokens in draw order, grouped by row
        first, tf = first[order], tf[order]
        rows = row_of_draw[first]
        position = np.arange(rows.size) - np.searchsorted(rows, np.arange(k.size))[rows]
        kept = position < k[rows]
        keys, tf = keys[first[kept]], tf[kept]
        order = np.argsort(keys)  # row-major, columns ascending
        col_parts.append((keys[order] % d).astype(index_type))
        tf_parts.append(tf[order].astype(np.float64))
        row_counts.append(np.bincount(keys // d, minlength=k.size))
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.concatenate(row_counts), out=indptr[1:])
    A = scipy.sparse.csr_matrix((np.concatenate(tf_parts), np.concatenate(col_parts), indptr), shape=(n, d))
    del col_parts, tf_parts
    unused = np.flatnonzero(np.bincount(A.indices, minlength=d) == 0)
    budget = min(unused.size, int(0.02 * A.nnz))
    if budget:
        unused = rng.choice(unused, size=budget, replace=False)
        A = A + scipy.sparse.csr_matrix((np.ones(budget), (rng.integers(0, n, size=budget), unused)), shape=(n, d))
    df = np.bincount(A.indices, minlength=d)
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    A.data = (1.0 + np.log(A.data)) * idf[A.indices]
    row_of_entry = np.repeat(np.arange(n, dtype=index_type), np.diff(A.indptr))
    A.data /= np.sqrt(np.bincount(row_of_entry, weights=A.data * A.data, minlength=n))[row_of_entry]
    del row_of_entry
    A.sort_indices()
    return A


def _text_problem(name, n_full, d_full, nnz_per_row_full, scale, seed, l2, positive_fraction, label_noise):
    n, d = _scaled(n_full, d_full, scale)
    nnz_per_row = max(nnz_per_row_full * d / d_full, 1.0)  # the density stays fixed
    positive_fraction = check_real("positive_fraction", positive_fraction, 0.0, 1.0, open_lower=True)
    label_noise = check_real("label_noise", label_noise, 0.0, 0.49)
    rng = np.random.default_rng(seed)
    A = _text_like(n, d, nnz_per_row, rng)
    planted = rng.normal(size=d)
    b = _planted_labels(A @ planted, positive_fraction, label_noise, rng)
    return LogisticProblem(name, A, b, check_real("l2", l2, 0.0), {"planted": planted, "seed": seed})


def rcv1_like(scale=1.0, seed=0, l2=0.0, positive_fraction=0.52, label_noise=0.05):
    """TF-IDF-like data like LIBSVM rcv1.binary: n = 20,242, d = 47,236, 0.16 % density (~75 a row).

    Rows of unit norm with positive values; labels from a planted Gaussian model
    (``positive_fraction`` positives, ``label_noise`` flipped).
    """
    return _text_problem("rcv1-like", 20_242, 47_236, 0.0016 * 47_236, scale, seed, l2, positive_fraction, label_noise)


def news20_like(scale=1.0, seed=0, l2=0.0, positive_fraction=0.5, label_noise=0.05):
    """TF-IDF-like data like LIBSVM news20.binary: n = 19,996, d = 1,355,191, ~450 non-zeros a row (0.033 %).

    Rows of unit norm with positive values; labels from a planted Gaussian model. The full
    size has about 9 million non-zeros (about 110 MB as CSR).
    """
    return _text_problem("news20-like", 19_996, 1_355_191, 450.0, scale, seed, l2, positive_fraction, label_noise)


def _counts_for(d, k, counts):
    if counts is None:
        base, extra = divmod(d, k)
        return np.array([base + (i < extra) for i in range(k)], dtype=np.int64)
    counts = np.asarray(counts)
    if counts.shape != (k,) or not np.issubdtype(counts.dtype, np.integer) or np.any(counts < 1):
        raise ValueError(f"counts must hold {k} positive integers (one per eigenvalue), got {counts!r}")
    if counts.sum() != d:
        raise ValueError(f"counts must sum to d = {d}, got {int(counts.sum())}")
    return counts.astype(np.int64)


def _random_orthogonal(rng, shape):
    """Haar-random matrices with orthonormal columns, shape (..., n, k), n ≥ k (QR with the sign correction)."""
    Q, R = np.linalg.qr(rng.normal(size=shape))
    return Q * np.sign(np.diagonal(R, axis1=-2, axis2=-1))[..., None, :]


def quadratic_with_spectrum(d, eigenvalues, counts=None, seed=0, dense_limit=2000, block=8):
    """A symmetric d×d H with the given distinct eigenvalues and multiplicities.

    Args:
        d: the dimension.
        eigenvalues: the k distinct eigenvalues.
        counts: their multiplicities (k positive integers summing to d; default: as equal as
            possible).
        seed: the seed of the random basis.
        dense_limit: up to this d, H = Q diag(λ) Qᵀ with Q Haar-random orthogonal (dense).
        block: above it, H = P B diag(λ) Bᵀ Pᵀ with B block-diagonal (blocks of ``block``
            Haar-random orthogonal matrices, the last one possibly smaller) and P a random
            permutation, returned as a CSR matrix with about d·block non-zeros, so that an
            HVP costs O(d·block) and coordinates are mixed within blocks.

    The eigenvalue list is assigned to coordinates in a random order. Returns H (dense
    array or CSR), ready for :class:`~reprobook.secondorder.oracles.QuadraticOracle`.
    """
    d = check_count("d", d)
    eigenvalues = finite_array("eigenvalues", eigenvalues)
    if eigenvalues.ndim != 1 or eigenvalues.size < 1:
        raise ValueError(f"eigenvalues must be a non-empty 1-D array, got shape {eigenvalues.shape}")
    block = check_count("block", block)
    counts = _counts_for(d, eigenvalues.size, counts)
    rng = np.random.default_rng(seed)
    spectrum = rng.permutation(np.repeat(eigenvalues, counts))
    if d <= dense_limit:
        Q = _random_orthogonal(rng, (d, d))
        H = (Q * spectrum) @ Q.T
        return 0.5 * (H + H.T)
    full, rest = divmod(d, block)
    row_parts, col_parts, value_parts = [], [], []
    sizes = [(block, full, 0)] + ([(rest, 1, full * block)] if rest else [])
    for size, number, offset in sizes:
        Q = _random_orthogonal(rng, (number, size, size))
        lam = spectrum[offset : offset + number * size].reshape(number, size)
        blocks = np.einsum("bik,bk,bjk->bij", Q, lam, Q)
        base = offset + size * np.arange(number)[:, None, None]
        row_parts.append(np.broadcast_to(base + np.arange(size)[None, :, None], blocks.shape).ravel())
        col_parts.append(np.broadcast_to(base + np.arange(size)[None, None, :], blocks.shape).ravel())
        value_parts.append(blocks.ravel())
    permutation = rng.permutation(d)
    rows = permutation[np.concatenate(row_parts)]
    cols = permutation[np.concatenate(col_parts)]
    H = scipy.sparse.csr_matrix((np.concatenate(value_parts), (rows, cols)), shape=(d, d))
    return (H + H.T) * 0.5


@dataclass
class QuadraticProblem:
    """A convex quadratic f(x) = ½xᵀHx with minimizer x* = 0 and f* = 0, and a starting point.

    Attributes:
        name: a label for plots.
        H: the d×d Hessian (CSR).
        x0: the starting point.
        eigenvalues: the eigenvalues of H, largest first.
        info: generator details.
    """

    name: str
    H: scipy.sparse.csr_matrix
    x0: np.ndarray
    eigenvalues: np.ndarray
    info: dict = field(default_factory=dict)

    @property
    def d(self):
        return self.H.shape[0]

    @property
    def smoothness(self):
        """L = λ_max(H), the Lipschitz constant of ∇f."""
        return float(self.eigenvalues[0])

    @property
    def distance(self):
        """‖x0 − x*‖ = ‖x0‖."""
        return float(np.linalg.norm(self.x0))

    @property
    def effective_dimension(self):
        """tr(H)/λ_max(H): how many directions of curvature L the spectrum amounts to."""
        return float(self.eigenvalues.sum() / self.eigenvalues[0])

    def oracle(self):
        """A :class:`~reprobook.secondorder.oracles.QuadraticOracle` for f (c = 0)."""
        return QuadraticOracle(self.H)


def quadratic_with_law(d, law="uniform", smoothness=1.0, distance=1.0, condition=1e4, seed=0, block=8):
    """A convex quadratic in d dimensions whose spectrum follows a fixed law on (0, L].

    The eigenvalues are the d quantiles of the law, so the law, L = ``smoothness`` and
    ‖x0 − x*‖ = ``distance`` are the same for every d while the number of directions with
    curvature grows in proportion to d (the setting of a dimension-free rate such as Krylov
    CRN's O(L‖x0 − x*‖²/(mk) + ...), Jiang et al., AISTATS 2024):

    * ``"uniform"``: λ_j = L·j/d, j = 1, …, d, the law U(0, L]. The smallest eigenvalue L/d
      tends to 0: in the limit the problem is convex but not strongly convex.
    * ``"log-uniform"``: λ_j = L·condition^(−(j−1)/(d−1)), log-uniform on
      [L/condition, L]: the condition number stays ``condition``.

    H = P B diag(λ) Bᵀ Pᵀ from :func:`quadratic_with_spectrum` in its sparse form at every d
    (B block-diagonal with Haar-random ``block``×``block`` rotations, P a random
    permutation; about ``block``·d non-zeros). x* = 0, f* = 0 and x0 = ``distance``·u with u
    uniform on the unit sphere, drawn from a stream seeded by (seed, d).

    Returns:
        A :class:`QuadraticProblem`.
    """
    d = check_count("d", d, 2)
    if law not in SPECTRAL_LAWS:
        raise ValueError(f"law must be one of {SPECTRAL_LAWS}, got {law!r}")
    smoothness = check_real("smoothness", smoothness, 0.0, open_lower=True)
    distance = check_real("distance", distance, 0.0, open_lower=True)
    condition = check_real("condition", condition, 1.0)
    seed = check_count("seed", seed, 0)
    if law == "uniform":
        eigenvalues = smoothness * np.arange(d, 0, -1) / d
    else:
        eigenvalues = smoothness * np.geomspace(1.0, 1.0 / condition, d)
    H = quadratic_with_spectrum(
        d, eigenvalues, counts=np.ones(d, dtype=np.int64), seed=seed, dense_limit=0, block=block
    )
    direction = np.random.default_rng([seed, d]).normal(size=d)
    x0 = distance * direction / np.linalg.norm(direction)
    info = {"law": law, "condition": condition if law == "log-uniform" else None, "seed": seed}
    return QuadraticProblem(f"{law} quadratic (d={d})", H, x0, eigenvalues, info)


def logistic_with_spectrum(d, n=500, singular_values=None, rank=50, l2=0.0, seed=0, margin_scale=2.0):
    """A logistic problem whose data and Hessian spectrum are the same for every dimension d.

    A dense n×rank block B = U diag(σ) Wᵀ (U with orthonormal columns, W orthogonal, both
    random from ``seed``) is placed in ``rank`` random columns of an n×d CSR matrix A; the
    other d − rank columns are zero. What stays fixed as d varies (same ``seed``): B, the
    labels, the singular values σ of A, the minimum value f* (the optimal x is zero off the
    active columns), and the Hessian at every x, which is the rank×rank Hessian of the block
    (eigenvalues between λ_min(BᵀD B)/n + l2 and σ₁²/(4n) + l2) plus the eigenvalue l2 with
    multiplicity d − rank. Only the position of the active columns depends on d (a second
    random stream seeded by (seed, d)). Note that f(x0) and ‖x0‖ grow with d for a dense x0
    such as 0.5·𝟙 when l2 > 0, and that without l2 the zero columns make the Hessian
    singular (f still has minimizers; the methods only need convexity).

    Args:
        d: the dimension (≥ rank).
        n: the number of samples.
        singular_values: σ, ``rank`` positive values (default √(4n)·geomspace(1, 0.01, rank),
            so that the Hessian at x = 0 has eigenvalues from 1 down to 1e−4, plus l2).
        rank: the number of active columns (used when ``singular_values`` is None).
        l2: the ridge weight.
        seed: the seed.
        margin_scale: the norm of the planted model relative to the default margins; labels
            are Bernoulli(σ(B w)) draws, so the data are not separable for n ≫ rank.
    """
    d = check_count("d", d)
    n = check_count("n", n, 2)
    if singular_values is None:
        rank = check_count("rank", rank)
        singular_values = np.sqrt(4.0 * n) * np.geomspace(1.0, 0.01, rank)
    singular_values = finite_array("singular_values", singular_values)
    if singular_values.ndim != 1 or singular_values.size < 1 or np.any(singular_values <= 0):
        raise ValueError("singular_values must be a non-empty 1-D array of positive numbers")
    rank = singular_values.size
    if rank > d:
        raise ValueError(f"d must be >= rank = {rank}, got {d}")
    if rank > n:
        raise ValueError(f"n must be >= rank = {rank}, got {n}")
    margin_scale = check_real("margin_scale", margin_scale, 0.0)
    rng = np.random.default_rng(seed)
    U = _random_orthogonal(rng, (n, rank))
    W = _random_orthogonal(rng, (rank, rank))
    B = (U * singular_values) @ W.T
    planted = rng.normal(size=rank)
    planted *= margin_scale * np.sqrt(n) / np.linalg.norm(B @ planted)
    probabilities = 1.0 / (1.0 + np.exp(-(B @ planted)))
    b = (rng.random(n) < probabilities).astype(np.float64)
    support = np.sort(np.random.default_rng([seed, d]).choice(d, size=rank, replace=False))
    A = scipy.sparse.csr_matrix((B.ravel(), np.tile(support, n), np.arange(0, n * rank + 1, rank)), shape=(n, d))
    return LogisticProblem(
        f"spectral logistic (d={d})",
        A,
        b,
        check_real("l2", l2, 0.0),
        {"support": support, "singular_values": singular_values, "block": B, "planted": planted, "seed": seed},
    )


def shakespeare_ngram_logistic(n_features=2**20, ngram_range=(1, 3), l2=0.0, cache=None):
    """A real high-dimensional text problem: is a speech from a comedy or from a tragedy?

    Documents are the paragraphs (speeches, stage directions) of the comedies and
    tragedies in the training split of the book's corpus
    (:func:`reprobook.lm.corpus.load_corpus`), labelled 1 for a comedy. Features are
    hashed word n-grams (scikit-learn's ``HashingVectorizer`` without sign flipping)
    reweighted by TF-IDF, each row of unit norm: a sparse design with ``n_features``
    columns, the offline analogue of the news20 text problem.
    """
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    from reprobook.lm.corpus import load_corpus

    n_features = check_count("n_features", n_features, 2)
    if (
        not isinstance(ngram_range, tuple)
        or len(ngram_range) != 2
        or not all(isinstance(k, int) for k in ngram_range)
        or not 1 <= ngram_range[0] <= ngram_range[1]
    ):
        raise ValueError(
            f"ngram_range must be a tuple (low, high) of integers with 1 <= low <= high, got {ngram_range!r}"
        )
    corpus = load_corpus(cache=cache)
    documents, labels = [], []
    for work in corpus.works("train"):
        if work.genre in ("comedy", "tragedy"):
            speeches = [part for part in work.text.split("\n\n") if len(part) >= 20]
            documents += speeches
            labels += [float(work.genre == "comedy")] * len(speeches)
    hashed = HashingVectorizer(
        n_features=n_features, ngram_range=ngram_range, alternate_sign=False, norm=None
    ).transform(documents)
    A = scipy.sparse.csr_matrix(TfidfTransformer().fit_transform(hashed))
    return LogisticProblem(
        "Shakespeare n-grams",
        A,
        np.asarray(labels),
        check_real("l2", l2, 0.0),
        {"n_features": n_features, "ngram_range": ngram_range, "documents": len(documents)},
    )
