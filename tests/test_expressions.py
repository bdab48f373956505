"""Expression trees: printing/parsing, JSON, sympy and LaTeX export, numpy vs torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gpsr.errors import GpsrError
from gpsr.expressions import Expression, parse
from gpsr.functions import PROTECTED_VALUE
from gpsr.genetic import SearchConfig, TreeFactory

PROXIES = ("snip", "flops", "grad_norm", "epe_nas", "l2.norm")


def random_tree(seed: int, depth: int, full: bool, function_set=None) -> Expression:
    kwargs = {"function_set": function_set} if function_set else {}
    cfg = SearchConfig(population_size=2, min_depth=0, max_depth=8, init_depth=(0, 8), **kwargs)
    factory = TreeFactory(cfg, PROXIES, np.random.default_rng(seed))
    return factory.random_tree(depth, full)


trees = st.builds(random_tree, st.integers(0, 2**32 - 1), st.integers(0, 6), st.booleans())


def leaf(name: str) -> Expression:
    return Expression(name)


def node(name: str, *children: Expression) -> Expression:
    return Expression(name, children)


def same_tree(a: Expression, b: Expression) -> bool:
    """Structural equality, independent of the infix-based ``__eq__``."""
    return a.to_json() == b.to_json()


# ---- printing and parsing ------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(trees)
def test_infix_round_trip_random_trees(tree):
    text = tree.infix()
    back = parse(text)
    assert same_tree(back, tree), (text, back.to_json(), tree.to_json())
    assert back.infix() == text
    assert back.depth == tree.depth and back.size == tree.size
    assert same_tree(parse(text, PROXIES), tree)


@settings(max_examples=100, deadline=None)
@given(trees)
def test_call_form_parses_to_the_same_tree(tree):
    def call_form(e: Expression) -> str:
        if e.is_leaf:
            return e.name
        return f"{e.name}({', '.join(call_form(c) for c in e.children)})"

    assert same_tree(parse(call_form(tree)), tree)


@pytest.mark.parametrize(
    "text, tree, printed",
    [
        ("a - (b - c)", node("sub", leaf("a"), node("sub", leaf("b"), leaf("c"))), "a - (b - c)"),
        ("a - b - c", node("sub", node("sub", leaf("a"), leaf("b")), leaf("c")), "a - b - c"),
        ("(a - b) - c", node("sub", node("sub", leaf("a"), leaf("b")), leaf("c")), "a - b - c"),
        ("a / (b * c)", node("div", leaf("a"), node("mul", leaf("b"), leaf("c"))), "a / (b * c)"),
        ("a / b * c", node("mul", node("div", leaf("a"), leaf("b")), leaf("c")), "a / b * c"),
        ("a * (b / c)", node("mul", leaf("a"), node("div", leaf("b"), leaf("c"))), "a * (b / c)"),
        ("a + b * c", node("add", leaf("a"), node("mul", leaf("b"), leaf("c"))), "a + b * c"),
        ("(a + b) * c", node("mul", node("add", leaf("a"), leaf("b")), leaf("c")),
         "(a + b) * c"),
        ("a * (b + c)", node("mul", leaf("a"), node("add", leaf("b"), leaf("c"))),
         "a * (b + c)"),
        ("-a", node("neg", leaf("a")), "neg(a)"),
        ("- - a", node("neg", node("neg", leaf("a"))), "neg(neg(a))"),
        ("-a * b", node("mul", node("neg", leaf("a")), leaf("b")), "neg(a) * b"),
        ("a - -b", node("sub", leaf("a"), node("neg", leaf("b"))), "a - neg(b)"),
        ("neg(a + b)", node("neg", node("add", leaf("a"), leaf("b"))), "neg(a + b)"),
        ("mul(a, b)", node("mul", leaf("a"), leaf("b")), "a * b"),
        ("sub(a, sub(b, c))", node("sub", leaf("a"), node("sub", leaf("b"), leaf("c"))),
         "a - (b - c)"),
        ("div(add(a, b), c)", node("div", node("add", leaf("a"), leaf("b")), leaf("c")),
         "(a + b) / c"),
        ("log(flops) * snip", node("mul", node("log", leaf("flops")), leaf("snip")),
         "log(flops) * snip"),
        ("sqrt(  log( x ))", node("sqrt", node("log", leaf("x"))), "sqrt(log(x))"),
        ("  snip ", leaf("snip"), "snip"),
        ("l2.norm_2", leaf("l2.norm_2"), "l2.norm_2"),
    ],
)
def test_hand_cases(text, tree, printed):
    parsed = parse(text)
    assert same_tree(parsed, tree)
    assert parsed.infix() == printed
    assert same_tree(parse(printed), tree)


def test_depth_and_size_conventions():
    assert parse("snip").depth == 0
    assert parse("log(snip)").depth == 1
    assert parse("log(snip) * flops").depth == 2
    assert parse("log(snip) * flops").size == 4
    assert parse("a - (b - c)").proxies() == {"a", "b", "c"}


def test_subtree_and_replace_follow_preorder():
    tree = parse("log(a) * (b - c)")
    preorder = [n.infix() for n in tree.nodes()]
    assert preorder == ["log(a) * (b - c)", "log(a)", "a", "b - c", "b", "c"]
    for i, text in enumerate(preorder):
        assert tree.subtree(i).infix() == text
    assert tree.replace(3, parse("d")).infix() == "log(a) * d"
    assert tree.replace(2, parse("x + y")).infix() == "log(x + y) * (b - c)"
    assert tree.replace(0, parse("z")).infix() == "z"
    assert tree.infix() == "log(a) * (b - c)"  # immutable
    assert tree.leaf_mask == (False, False, True, False, True, True)
    assert tree.positions(leaves=True) == (2, 4, 5)
    assert tree.positions(leaves=False) == (0, 1, 3)
    with pytest.raises(IndexError):
        tree.subtree(6)


# ---- parse errors ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, fragment",
    [
        ("snip $ flops", "'$"),
        ("2 * snip", "'2"),
        ("snip ** 2", "unexpected '2'"),
        ("snip ** flops", "unexpected '**'"),
        ("foo(snip)", "unknown function 'foo'"),
        ("exp(snip)", "unknown function 'exp'"),
        ("add(snip)", "add takes 2 argument(s), got 1"),
        ("log(snip, flops)", "log takes 1 argument(s), got 2"),
        ("neg(a, b, c)", "neg takes 1 argument(s), got 3"),
        ("snip +", "unexpected end"),
        ("", "unexpected end"),
        ("(snip", "unexpected end"),
        ("snip)", "unexpected ')'"),
        ("snip flops", "unexpected 'flops'"),
        ("log(snip", "unexpected end"),
    ],
)
def test_parse_errors_name_the_problem(text, fragment):
    with pytest.raises(GpsrError) as info:
        parse(text)
    message = str(info.value)
    assert fragment in message
    assert repr(text) in message  # names the expression too
    assert "\n" not in message


def test_unknown_proxy_when_proxies_given():
    with pytest.raises(GpsrError, match="names proxy 'zico'") as info:
        parse("log(flops) * zico", ["flops", "snip"])
    assert "available: flops, snip" in str(info.value)
    assert same_tree(parse("log(flops) * zico"), parse("mul(log(flops), zico)"))  # no check


# ---- JSON --------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(trees)
def test_json_round_trip(tree):
    data = json.loads(json.dumps(tree.to_json()))
    back = Expression.from_json(data)
    assert same_tree(back, tree)
    assert back == tree and hash(back) == hash(tree)


def test_json_layout():
    assert parse("log(flops) * snip").to_json() == ["mul", ["log", "flops"], "snip"]
    assert parse("snip").to_json() == "snip"


@pytest.mark.parametrize("bad", [["exp", "a"], [], ["add", "a"], 3, ["log", "a", "b"]])
def test_json_errors(bad):
    with pytest.raises(GpsrError):
        Expression.from_json(bad)


# ---- sympy and LaTeX ---------------------------------------------------------------------
POSITIVE = {p: np.array([0.5, 1.7, 3.0, 12.5, 250.0, 1e-3]) for p in PROXIES}
POSITIVE = {p: v * (1 + 0.37 * k) for k, (p, v) in enumerate(POSITIVE.items())}


def _nodes_unprotected(expr: Expression, values) -> bool:
    """True when no node of ``expr`` hits a protected branch on ``values``."""
    for n in expr.nodes():
        v = n.evaluate(values)
        if not np.isfinite(v).all() or (v == PROTECTED_VALUE).any():
            return False
        if n.name == "div" and (n.children[1].evaluate(values) == 0).any():
            return False
        if n.name == "log" and (n.children[0].evaluate(values) <= 0).any():
            return False
        if n.name == "sqrt" and (n.children[0].evaluate(values) < 0).any():
            return False
    return True


def _sympy_values(sym_expr, values) -> np.ndarray:
    symbols = sorted(sym_expr.free_symbols, key=lambda s: s.name)
    fn = sympy.lambdify(symbols, sym_expr, modules="numpy")
    n = len(next(iter(values.values())))
    out = np.asarray(fn(*(values[s.name] for s in symbols)), dtype=np.complex128)
    return np.broadcast_to(out, (n,))


@settings(max_examples=60, deadline=None)
@given(st.builds(random_tree, st.integers(0, 2**32 - 1), st.integers(0, 4), st.booleans()))
def test_sympy_matches_evaluate_on_positive_inputs(tree):
    ours = tree.evaluate(POSITIVE)
    if not _nodes_unprotected(tree, POSITIVE):
        return  # protection has no algebraic counterpart
    sym = tree.to_sympy()
    assert {s.name for s in sym.free_symbols} <= tree.proxies()
    theirs = _sympy_values(sym, POSITIVE)
    np.testing.assert_allclose(theirs.imag, 0, atol=1e-9)
    np.testing.assert_allclose(theirs.real, ours, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "text",
    [
        "sqrt(snip * snip)",
        "log(snip * flops)",
        "sqrt(snip) * sqrt(flops)",
        "log(sqrt(snip))",
        "log(snip / flops) + log(flops)",
        "snip * flops / snip",
        "neg(neg(snip)) - flops + flops",
        "sqrt(flops / snip) * sqrt(snip)",
        "log(flops * flops) - log(flops)",
    ],
)
def test_simplified_sympy_matches_evaluate(text):
    tree = parse(text)
    ours = tree.evaluate(POSITIVE)
    assert _nodes_unprotected(tree, POSITIVE)
    for simplify in (False, True):
        theirs = _sympy_values(tree.to_sympy(simplify=simplify), POSITIVE)
        np.testing.assert_allclose(theirs.imag, 0, atol=1e-9)
        np.testing.assert_allclose(theirs.real, ours, rtol=1e-9)


@settings(max_examples=30, deadline=None)
@given(st.builds(random_tree, st.integers(0, 2**32 - 1), st.integers(0, 3), st.booleans()))
def test_latex_export_runs(tree):
    latex = tree.to_latex()
    assert isinstance(latex, str) and latex
    for proxy in (s.name for s in tree.to_sympy().free_symbols):  # sympy may cancel some
        assert rf"\mathrm{{{proxy.replace('_', chr(92) + '_')}}}" in latex


def test_latex_examples():
    expected = r"\mathrm{snip} \log{\left(\mathrm{flops} \right)}"
    assert parse("log(flops) * snip").to_latex() == expected
    assert r"\mathrm{grad\_norm}" in parse("sqrt(grad_norm)").to_latex()


# ---- numpy vs torch evaluation ----------------------------------------------------------
def _inputs(seed: int, n: int = 40) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    special = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, -1e8, 1e-300, 1e300])
    out = {}
    for p in PROXIES:
        v = rng.normal(scale=rng.choice([1e-3, 1.0, 1e3]), size=n)
        mask = rng.random(n) < 0.2
        v[mask] = rng.choice(special, mask.sum())
        out[p] = v
    return out


@settings(max_examples=150, deadline=None)
@given(trees, st.integers(0, 2**32 - 1))
def test_torch_evaluation_equals_numpy(tree, seed):
    values = _inputs(seed)
    ours = tree.evaluate(values)
    theirs = tree.evaluate_torch({p: torch.as_tensor(v) for p, v in values.items()}).numpy()
    assert not np.isnan(ours).any() and not np.isnan(theirs).any()
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs))
    np.testing.assert_array_equal(ours[~np.isfinite(ours)], theirs[~np.isfinite(theirs)])
    np.testing.assert_array_equal(ours == PROTECTED_VALUE, theirs == PROTECTED_VALUE)
    fin = np.isfinite(ours)
    np.testing.assert_allclose(theirs[fin], ours[fin], rtol=1e-12, atol=0)


def test_evaluate_names_a_missing_proxy():
    with pytest.raises(GpsrError, match="'zico'"):
        parse("snip + zico").evaluate({"snip": np.ones(3)})
    with pytest.raises(GpsrError, match="'zico'"):
        parse("snip + zico").evaluate_torch({"snip": torch.ones(3)})


def test_evaluate_applies_the_nan_policy_to_terminals():
    out = parse("snip").evaluate({"snip": np.array([np.nan, np.inf, 2.0])})
    np.testing.assert_array_equal(out, [PROTECTED_VALUE, np.inf, 2.0])
    out_t = parse("snip").evaluate_torch({"snip": torch.tensor([np.nan, -np.inf, 2.0])})
    np.testing.assert_array_equal(out_t.numpy(), [PROTECTED_VALUE, -np.inf, 2.0])
