"""Packing and the search's per-class costs against plain per-item and per-slice computations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snnc.compiler.mapping.factored import Factored, joint, max_of_sum, total
from snnc.compiler.mapping.partition import pack


def first_fit(sizes: np.ndarray, caps: np.ndarray, order: np.ndarray, window: int | None) -> tuple[list[int], int]:
    """One item at a time: the first open core (of the last ``window``) it fits, else a new core."""
    used: list[np.ndarray] = []
    core = [0] * len(sizes)
    for i in order:
        lo = 0 if window is None else max(0, len(used) - window)
        for j in range(lo, len(used)):
            if np.all(used[j] + sizes[i] <= caps):
                used[j] = used[j] + sizes[i]
                core[i] = j
                break
        else:
            used.append(sizes[i].copy())
            core[i] = len(used) - 1
    return core, len(used)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(1, 120), st.sampled_from([None, 1, 3, 64]), st.booleans())
def test_pack_is_first_fit(seed, n, window, runs):
    """Runs of identical items placed at once give exactly the per-item first fit (zeros included)."""
    rng = np.random.default_rng(seed)
    caps = np.array([10, 7, 5, 12], np.int64)
    kinds = rng.integers(0, 6, size=(4 if runs else n, 4)) * (rng.random((4 if runs else n, 4)) < 0.8)
    kinds = np.minimum(kinds, caps)
    sizes = kinds[rng.integers(0, len(kinds), n)] if runs else kinds
    order = np.argsort(-sizes.max(axis=1), kind="stable") if runs else rng.permutation(n)
    core, n_cores = pack(sizes, caps, order, window)
    want, n_want = first_fit(sizes, caps, order, window)
    assert n_cores == n_want
    np.testing.assert_array_equal(core, want)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10_000), st.integers(2, 600), st.sampled_from([None, 4, 64]), st.integers(-3, 3))
def test_pack_gives_up_only_above_the_limit(seed, n, window, slack):
    """A packing that may give up returns None only when it would end above the limit, else the same."""
    rng = np.random.default_rng(seed)
    caps = np.array([10, 7, 5, 12], np.int64)
    sizes = np.minimum(rng.integers(0, 6, size=(n, 4)), caps)
    order = rng.permutation(n)
    core, n_cores = pack(sizes, caps, order, window)
    limit = max(1, n_cores + slack)
    got = pack(sizes, caps, order, window, give_up_above=limit)
    if got is None:
        assert n_cores > limit
    else:
        assert got[1] == n_cores
        np.testing.assert_array_equal(got[0], core)


def grid_of(rng, grid, classes) -> Factored:
    """A random grid whose every class holds at least one tile (as Factored requires)."""
    classes = tuple(min(c, g) for c, g in zip(classes, grid))
    index = tuple(rng.permutation(np.concatenate([np.arange(c), rng.integers(0, c, g - c)])) for c, g in zip(classes, grid))
    return Factored(rng.integers(0, 50, size=classes), index)


@pytest.mark.parametrize("seed", range(20))
def test_factored_grids_equal_full_grids(seed):
    """Sums, maxima and totals by classes equal those of the full grids, integer for integer."""
    rng = np.random.default_rng(seed)
    grid = tuple(int(v) for v in rng.integers(1, 9, 3))
    terms = [grid_of(rng, grid, tuple(int(v) for v in rng.integers(1, 5, 3))) for _ in range(int(rng.integers(1, 4)))]
    full = sum(t.expand() for t in terms)
    assert max_of_sum(terms) == int(full.max())
    assert sum(total(t) for t in terms) == int(full.sum())
    values, index = joint(terms)
    for t, v in zip(terms, values):   # every term on the joint classes
        np.testing.assert_array_equal(v[np.ix_(*index)], t.expand())
    c, y, x = (rng.integers(0, 4, g) for g in grid)
    np.testing.assert_array_equal(Factored.outer(c, y, x).expand(), c[:, None, None] * y[None, :, None] * x[None, None, :])

