"""The primitive operators of the expression language (paper, appendix B, table 8).

Protected operators return :data:`PROTECTED_VALUE` where their input breaks the
operator's constraint: ``div`` where the divisor is 0, ``log`` where its input is
not > 0, ``sqrt`` where its input is < 0.

Non-finite policy (one rule, used by every backend): a NaN produced by any
operator, or present in the data, is read as :data:`PROTECTED_VALUE`; +/-inf are
kept, because they still order correctly against every finite value.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np
import torch

PROTECTED_VALUE = -10_000_000.0


@dataclass(frozen=True)
class Primitive:
    name: str
    arity: int
    symbol: str  # infix symbol for binary operators, function name for unary ones
    numpy_fn: Callable[..., np.ndarray]
    torch_fn: Callable[..., torch.Tensor]
    #: ``fn(a, b, mask, out)``: the same result, written into ``out`` and returned;
    #: ``out`` may be ``a`` itself; ``a``, ``b`` and the scratch ``mask`` (float64, the
    #: shape of ``a``) may be clobbered; ``b`` is None for unary operators; inputs must
    #: be NaN-free (every node applies the policy). The batched evaluator writes straight
    #: into its value slab with it: fresh allocations of this size cost page faults.
    torch_into: Callable[..., torch.Tensor]


def _np_clean(z: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(z), PROTECTED_VALUE, z)


def _torch_clean(z: torch.Tensor) -> torch.Tensor:
    return torch.nan_to_num(z, nan=PROTECTED_VALUE, posinf=float("inf"), neginf=float("-inf"))


def _np_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return _np_clean(np.where(y != 0, x / np.where(y != 0, y, 1.0), PROTECTED_VALUE))


def _np_log(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), PROTECTED_VALUE)


def _np_sqrt(x: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.where(x >= 0, np.sqrt(np.where(x >= 0, x, 0.0)), PROTECTED_VALUE)


def _np_binary(op: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def fn(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return _np_clean(op(x, y))

    return fn


def _t_div(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    nonzero = y != 0
    return _torch_clean(torch.where(nonzero, x / torch.where(nonzero, y, 1.0), PROTECTED_VALUE))


def _t_log(x: torch.Tensor) -> torch.Tensor:
    positive = x > 0
    return torch.where(positive, torch.log(torch.where(positive, x, 1.0)), PROTECTED_VALUE)


def _t_sqrt(x: torch.Tensor) -> torch.Tensor:
    nonneg = x >= 0
    return torch.where(nonneg, torch.sqrt(torch.where(nonneg, x, 0.0)), PROTECTED_VALUE)


def _ti_clean(a: torch.Tensor) -> torch.Tensor:
    return a.nan_to_num_(nan=PROTECTED_VALUE, posinf=float("inf"), neginf=float("-inf"))


def _ti_binary(op: Callable[..., torch.Tensor]):
    def fn(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, out: torch.Tensor):
        return _ti_clean(op(a, b, out=out))

    return fn


# torch's CPU kernels for bool masks (masked_fill_, where) run ~15x slower than plain
# arithmetic, so the in-place forms below mark broken inputs with a 0/1 float64 mask and
# fix them up by addition and multiplication, which give the same values exactly.


def _ti_div(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, out: torch.Tensor):
    # A zero divisor becomes 0/0 (a times 0, or inf times 0, is 0 or NaN), a NaN that the
    # policy turns into the protected value; every other quotient is untouched.
    keep = torch.ne(b, 0, out=mask)
    return _ti_clean(torch.div(a.mul_(keep), b, out=out))


def _numpy_on_cpu(torch_fn: Callable[..., torch.Tensor],
                  numpy_fn: np.ufunc) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``fn(a, out)``: torch's op, but numpy's ufunc on the same memory for CPU tensors.

    torch's float64 log and sqrt on the CPU run 2.9x and 1.6x slower than numpy's SIMD
    ones (torch 2.13, AVX-512: 2.24 vs 0.78 and 1.83 vs 1.17 ns per element), and they
    are a quarter of the evaluator's time. The program stays one batched tensor
    program; only these two elementwise kernels come from numpy there. GPUs use torch's.
    """

    def fn(a: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        if a.device.type != "cpu":
            return torch_fn(a, out=out)
        with np.errstate(invalid="ignore"):  # NaN results are expected: the policy fixes them
            numpy_fn(a.numpy(), out=out.numpy())
        return out

    return fn


_log_into = _numpy_on_cpu(torch.log, np.log)
_sqrt_into = _numpy_on_cpu(torch.sqrt, np.sqrt)


def _ti_log(a: torch.Tensor, b: None, mask: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    # Inputs <= 0 are raised to 1 first (numpy's and torch's logs run 5-10x slower where
    # the result is NaN or -inf), so their log is 0, and adding the mask times the
    # protected value gives exactly the protected value there and adds 0 everywhere else.
    broken = torch.le(a, 0, out=mask)
    return _log_into(torch.maximum(a, broken, out=a), out).add_(broken, alpha=PROTECTED_VALUE)


def _ti_sqrt(a: torch.Tensor, b: None, mask: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    # The square root of a negative input is NaN, which the policy turns into the
    # protected value: two passes over the data, not four with a mask. (numpy's sqrt runs
    # at one speed on every input; torch's CPU sqrt of 0 runs ~5x slower, but on the CPU
    # numpy's is used.)
    return _ti_clean(_sqrt_into(a, out))


PRIMITIVES: dict[str, Primitive] = {
    p.name: p
    for p in (
        Primitive("add", 2, "+", _np_binary(np.add), lambda x, y: _torch_clean(x + y),
                  _ti_binary(torch.add)),
        Primitive("sub", 2, "-", _np_binary(np.subtract), lambda x, y: _torch_clean(x - y),
                  _ti_binary(torch.sub)),
        Primitive("mul", 2, "*", _np_binary(np.multiply), lambda x, y: _torch_clean(x * y),
                  _ti_binary(torch.mul)),
        Primitive("div", 2, "/", _np_div, _t_div, _ti_div),
        Primitive("neg", 1, "neg", np.negative, torch.neg,
                  lambda a, b, m, out: torch.neg(a, out=out)),
        Primitive("log", 1, "log", _np_log, _t_log, _ti_log),
        Primitive("sqrt", 1, "sqrt", _np_sqrt, _t_sqrt, _ti_sqrt),
    )
}

DEFAULT_FUNCTION_SET: tuple[str, ...] = tuple(PRIMITIVES)

#: Operators that compiled code may apply itself, element by element, as it reads their
#: operands (the Kendall kernel does, for an expression's root: see
#: ``PopulationEvaluator.stages``), with :func:`apply_fused`: IEEE arithmetic and square
#: root round alike in numba, numpy and torch, so the values are the same bits. log is
#: left out: numpy's SIMD log and libm's may differ in the last bit. An operator's code
#: is its position plus one (0 means no operator); :func:`apply_fused` follows this order.
FUSED_OPERATORS: tuple[str, ...] = ("add", "sub", "mul", "div", "neg", "sqrt")


@numba.njit(cache=True, nogil=True, inline="always")
def apply_fused(code: int, x: float, y: float) -> float:
    """Operator ``FUSED_OPERATORS[code - 1]`` of ``x`` (and ``y``, if binary), protected
    and with the non-finite policy, on one element: NaN-free inputs, as in the slab."""
    if code == 4:  # div: Python semantics would raise on a zero divisor
        z = PROTECTED_VALUE if y == 0 else x / y
    elif code == 5:
        return -x
    elif code == 6:
        return PROTECTED_VALUE if x < 0 else math.sqrt(x)  # sqrt(-0.0) is -0.0, as numpy's
    else:
        z = x + y if code == 1 else (x - y if code == 2 else x * y)
    return PROTECTED_VALUE if z != z else z


def clean_terminal_values(values: np.ndarray) -> np.ndarray:
    """Apply the non-finite policy to raw proxy values before they enter an expression."""
    return _np_clean(np.asarray(values, dtype=np.float64))
