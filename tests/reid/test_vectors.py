"""reid.vectors.l2_normalize: hand-computed unit vectors, zero rows, eps and dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from reid.vectors import l2_normalize


def test_rows_become_unit_vectors() -> None:
    x = np.array([[3, 4], [0, 5], [-6, 8]], np.float32)
    np.testing.assert_allclose(l2_normalize(x), [[0.6, 0.8], [0, 1], [-0.6, 0.8]], rtol=1e-6)
    assert l2_normalize(x).dtype == np.float32


def test_a_vector_and_another_axis() -> None:
    np.testing.assert_allclose(l2_normalize(np.array([1.0, 2.0, 2.0])), [1 / 3, 2 / 3, 2 / 3])
    cols = l2_normalize(np.array([[3.0, 1.0], [4.0, 0.0]]), axis=0)
    np.testing.assert_allclose(cols, [[0.6, 1.0], [0.8, 0.0]])


def test_zero_rows_stay_zero_and_small_norms_are_floored_at_eps() -> None:
    x = np.array([[0.0, 0.0], [3e-13, 4e-13]])
    out = l2_normalize(x)
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out[0], [0.0, 0.0])
    np.testing.assert_allclose(out[1], [0.3, 0.4])  # norm 5e-13 < eps 1e-12: divided by eps
    np.testing.assert_allclose(l2_normalize(x, eps=1e-14)[1], [0.6, 0.8])


def test_dtype_casts_before_the_arithmetic() -> None:
    out = l2_normalize([[1, 1]], dtype=np.float32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[2**-0.5, 2**-0.5]], rtol=1e-6)


@pytest.mark.parametrize("kwargs", [{"eps": -1.0}, {"eps": float("nan")}])
def test_bad_eps_is_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="eps"):
        l2_normalize(np.ones((1, 2)), **kwargs)


def test_a_scalar_is_refused() -> None:
    with pytest.raises(ValueError, match="scalar"):
        l2_normalize(np.float32(3.0))
