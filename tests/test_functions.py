"""Protected operators, the non-finite policy, and numpy/torch agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gpsr.functions import (
    DEFAULT_FUNCTION_SET,
    FUSED_OPERATORS,
    PRIMITIVES,
    PROTECTED_VALUE,
    apply_fused,
    clean_terminal_values,
)

INF = np.inf
EDGE = np.array(
    [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, 1e-300, -1e-300, 5e-324, 1e300, -1e300,
     PROTECTED_VALUE, -1e8, INF, -INF, np.nan, 3.7, 1e7],
    dtype=np.float64,
)


def np_call(name: str, *args: np.ndarray) -> np.ndarray:
    return PRIMITIVES[name].numpy_fn(*args)


def torch_call(name: str, *args: np.ndarray) -> np.ndarray:
    tensors = [torch.as_tensor(a, dtype=torch.float64) for a in args]
    return PRIMITIVES[name].torch_fn(*tensors).numpy()


def edge_pairs() -> tuple[np.ndarray, np.ndarray]:
    x, y = np.meshgrid(EDGE, EDGE)
    return x.ravel(), y.ravel()


def assert_agree(a: np.ndarray, b: np.ndarray) -> None:
    """Same non-finite pattern exactly; finite values equal to the last bits or so."""
    assert a.shape == b.shape
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_array_equal(np.isposinf(a), np.isposinf(b))
    np.testing.assert_array_equal(np.isneginf(a), np.isneginf(b))
    np.testing.assert_array_equal(a == PROTECTED_VALUE, b == PROTECTED_VALUE)
    fin = np.isfinite(a)
    np.testing.assert_allclose(a[fin], b[fin], rtol=1e-14, atol=0)


def test_function_set_is_table_8():
    assert set(DEFAULT_FUNCTION_SET) == {"add", "sub", "mul", "div", "neg", "log", "sqrt"}
    assert {n: p.arity for n, p in PRIMITIVES.items()} == {
        "add": 2, "sub": 2, "mul": 2, "div": 2, "neg": 1, "log": 1, "sqrt": 1,
    }
    assert PROTECTED_VALUE == -1e7


# ---- protected operators ----------------------------------------------------------
@pytest.mark.parametrize("impl", [np_call, torch_call])
def test_div_by_zero_is_protected(impl):
    x = np.array([1.0, -3.0, 0.0, INF, -INF, 1e300])
    for zero in (0.0, -0.0):
        out = impl("div", x, np.full_like(x, zero))
        np.testing.assert_array_equal(out, np.full_like(x, PROTECTED_VALUE))


@pytest.mark.parametrize("impl", [np_call, torch_call])
def test_log_of_non_positive_is_protected(impl):
    x = np.array([0.0, -0.0, -1e-300, -1.0, -INF, -1e300])
    np.testing.assert_array_equal(impl("log", x), np.full_like(x, PROTECTED_VALUE))
    np.testing.assert_allclose(impl("log", np.array([1.0, np.e, 5e-324])),
                               [0.0, 1.0, np.log(5e-324)], rtol=1e-15)


@pytest.mark.parametrize("impl", [np_call, torch_call])
def test_sqrt_of_negative_is_protected(impl):
    x = np.array([-1e-300, -1.0, -INF, -1e300, -5e-324])
    np.testing.assert_array_equal(impl("sqrt", x), np.full_like(x, PROTECTED_VALUE))
    np.testing.assert_array_equal(impl("sqrt", np.array([0.0, -0.0, 4.0, INF])),
                                  [0.0, 0.0, 2.0, INF])


@pytest.mark.parametrize("impl", [np_call, torch_call])
def test_plain_values(impl):
    a, b = np.array([3.0, -2.0, 0.5]), np.array([2.0, 4.0, -0.25])
    np.testing.assert_array_equal(impl("add", a, b), a + b)
    np.testing.assert_array_equal(impl("sub", a, b), a - b)
    np.testing.assert_array_equal(impl("mul", a, b), a * b)
    np.testing.assert_array_equal(impl("div", a, b), a / b)
    np.testing.assert_array_equal(impl("neg", a), -a)
    np.testing.assert_allclose(impl("log", b[:2]), np.log(b[:2]), rtol=1e-15)
    np.testing.assert_allclose(impl("sqrt", a[[0, 2]]), np.sqrt(a[[0, 2]]), rtol=1e-15)


# ---- non-finite policy ---------------------------------------------------------
@pytest.mark.parametrize("impl", [np_call, torch_call])
@pytest.mark.parametrize(
    "name, args",
    [
        ("add", (INF, -INF)),
        ("sub", (INF, INF)),
        ("mul", (INF, 0.0)),
        ("mul", (-INF, 0.0)),
        ("div", (INF, INF)),
        ("div", (-INF, INF)),
    ],
)
def test_nan_results_become_protected(impl, name, args):
    out = impl(name, *(np.array([a]) for a in args))
    assert out.tolist() == [PROTECTED_VALUE]


@pytest.mark.parametrize("impl", [np_call, torch_call])
def test_infinities_are_kept(impl):
    assert impl("add", np.array([INF]), np.array([1.0])).tolist() == [INF]
    assert impl("sub", np.array([1.0]), np.array([INF])).tolist() == [-INF]
    assert impl("mul", np.array([1e300]), np.array([1e300])).tolist() == [INF]
    assert impl("mul", np.array([-INF]), np.array([2.0])).tolist() == [-INF]
    assert impl("div", np.array([1e300]), np.array([1e-300])).tolist() == [INF]
    assert impl("div", np.array([1.0]), np.array([INF])).tolist() == [0.0]
    assert impl("neg", np.array([INF])).tolist() == [-INF]
    assert impl("log", np.array([INF])).tolist() == [INF]
    assert impl("sqrt", np.array([INF])).tolist() == [INF]


@pytest.mark.parametrize("impl", [np_call, torch_call])
@pytest.mark.parametrize("name", ["add", "sub", "mul", "div"])
def test_nan_operands_give_protected(impl, name):
    """NaN never escapes a binary operator, whichever side it enters on."""
    nan = np.array([np.nan, 1.0, np.nan])
    one = np.array([2.0, np.nan, np.nan])
    out = impl(name, nan, one)
    assert not np.isnan(out).any()
    np.testing.assert_array_equal(out, np.full(3, PROTECTED_VALUE))


@pytest.mark.parametrize("impl", [np_call, torch_call])
def test_nan_into_log_and_sqrt_gives_protected(impl):
    for name in ("log", "sqrt"):
        assert impl(name, np.array([np.nan])).tolist() == [PROTECTED_VALUE]


def test_clean_terminal_values():
    raw = np.array([[1.0, np.nan], [INF, -INF], [-1e8, 0.0]])
    out = clean_terminal_values(raw)
    expected = np.array([[1.0, PROTECTED_VALUE], [INF, -INF], [-1e8, 0.0]])
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float64
    assert not np.isnan(raw[0, 0])  # the input is not modified
    np.testing.assert_array_equal(clean_terminal_values([1, 2]), [1.0, 2.0])


# ---- numpy and torch agree elementwise -------------------------------------------
@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_numpy_torch_agree_on_edge_grid(name):
    if PRIMITIVES[name].arity == 1:
        args = (EDGE,)
    else:
        args = edge_pairs()
    assert_agree(np_call(name, *args), torch_call(name, *args))


@pytest.mark.parametrize("name", sorted(PRIMITIVES))
@pytest.mark.parametrize("in_place", [True, False])
def test_evaluator_form_agrees_with_numpy_on_cleaned_edge_grid(name, in_place):
    """The evaluator's form, into its first operand or elsewhere; its inputs are NaN-free."""
    prim = PRIMITIVES[name]
    args = [clean_terminal_values(a) for a in ((EDGE,) if prim.arity == 1 else edge_pairs())]
    a = torch.as_tensor(args[0].copy())
    b = torch.as_tensor(args[1].copy()) if prim.arity == 2 else None
    mask = torch.empty(a.shape, dtype=torch.bool)
    out = a if in_place else torch.empty_like(a)
    result = prim.torch_into(a, b, mask, out)
    assert result.data_ptr() == out.data_ptr()
    assert_agree(np_call(name, *args), result.numpy())


def test_no_binary_operator_returns_nan_on_the_edge_grid():
    x, y = edge_pairs()
    for name, prim in PRIMITIVES.items():
        if prim.arity == 2:
            for impl in (np_call, torch_call):
                assert not np.isnan(impl(name, x, y)).any(), name


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, INF, -INF, np.nan]),
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(PRIMITIVES)), st.integers(1, 30).flatmap(
    lambda n: st.tuples(hnp.arrays(np.float64, n, elements=values),
                        hnp.arrays(np.float64, n, elements=values))))
def test_numpy_torch_agree_on_random_inputs(name, xy):
    x, y = xy
    if PRIMITIVES[name].arity == 1:
        # Unary operators only ever see cleaned values (the evaluator cleans terminals first).
        args = (clean_terminal_values(x),)
    else:
        args = (x, y)
    assert_agree(np_call(name, *args), torch_call(name, *args))


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(["div", "log", "sqrt"]), hnp.arrays(
    np.float64, st.integers(1, 20), elements=values))
def test_protected_value_exactly_where_the_constraint_breaks(name, x):
    x = clean_terminal_values(x)
    y = x[::-1].copy()
    if name == "div":
        broken = y == 0
        out_np, out_t = np_call("div", x, y), torch_call("div", x, y)
    else:
        broken = x <= 0 if name == "log" else x < 0
        out_np, out_t = np_call(name, x), torch_call(name, x)
    assert (out_np[broken] == PROTECTED_VALUE).all()
    assert (out_t[broken] == PROTECTED_VALUE).all()


@pytest.mark.parametrize("name", FUSED_OPERATORS)
def test_fused_form_gives_the_same_bits_as_numpy_on_the_cleaned_edge_grid(name):
    """The Kendall kernel applies these operators itself, element by element: the values,
    and the signs of zeros, must be numpy's exactly, or taus could differ."""
    prim = PRIMITIVES[name]
    x, y = (clean_terminal_values(a) for a in edge_pairs())
    expected = prim.numpy_fn(x, y) if prim.arity == 2 else prim.numpy_fn(x)
    code = FUSED_OPERATORS.index(name) + 1
    got = np.array([apply_fused(code, a, b) for a, b in zip(x, y)])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))
