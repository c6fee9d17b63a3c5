"""The one claims protocol (advtransfer/claims.py): the tests' p-values against brute-force enumerations written
independently here, their smallest reachable p, Holm against statsmodels, the verdict rule, declarations and
claim rows."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from advtransfer import claims as C


def frame(x: np.ndarray, y: np.ndarray, strata=None) -> pd.DataFrame:
    """Rows of a (units x seeds) design: x[u, k], y[u, k]."""
    u, k = x.shape
    out = pd.DataFrame({"source": np.repeat([f"s{i}" for i in range(u)], k), "seed": np.tile(np.arange(k), u),
                        "x": x.ravel(), "y": y.ravel()})  # fmt: skip
    if strata is not None:
        out["level"] = np.repeat(strata, k)
    return out


def brute_force(x: np.ndarray, y: np.ndarray, strata=None) -> tuple[float, float, float]:
    """Observed mean within-cell Spearman and its exact one-sided p-values, by scipy over every arrangement."""
    u, k = x.shape
    strata = np.zeros(u, dtype=int) if strata is None else np.asarray(strata)
    levels = sorted(set(strata))

    def statistic(perm):
        rhos = [stats.spearmanr(x[perm][strata == h, s], y[strata == h, s])[0] for h in levels for s in range(k)]
        return float(np.mean(rhos))

    groups = [np.flatnonzero(strata == h) for h in levels]
    values = []
    for images in itertools.product(*[itertools.permutations(g) for g in groups]):
        perm = np.arange(u)
        for g, image in zip(groups, images):
            perm[g] = image
        values.append(statistic(perm))
    observed = statistic(np.arange(u))
    values = np.asarray(values)
    return observed, float(np.mean(values >= observed - 1e-12)), float(np.mean(values <= observed + 1e-12))


def test_unit_permutations_enumerate_every_arrangement_within_strata_identity_first():
    strata = [0, 0, 0, 1, 1]
    perms, exact = C.unit_permutations(strata, n_perm=10, seed=0)
    assert exact and perms.shape == (math.factorial(3) * math.factorial(2), 5)
    assert (perms[0] == np.arange(5)).all()
    assert len({tuple(p) for p in perms}) == len(perms)
    assert set(perms[:, :3].ravel()) == {0, 1, 2} and set(perms[:, 3:].ravel()) == {3, 4}
    assert C.arrangements(strata) == 12


def test_unit_permutations_sample_when_there_are_too_many():
    perms, exact = C.unit_permutations(np.zeros(12), n_perm=500, seed=3, max_exact=1000)
    assert not exact and perms.shape == (501, 12) and (perms[0] == np.arange(12)).all()
    assert all(sorted(p) == list(range(12)) for p in perms)
    again, _ = C.unit_permutations(np.zeros(12), n_perm=500, seed=3, max_exact=1000)
    np.testing.assert_array_equal(perms, again)


def test_permutation_p_counts_the_observed_arrangement():
    assert C.permutation_p(np.array([3.0, 1.0, 2.0, 3.0])) == (0.5, 1.0)
    assert C.permutation_p(np.array([0.0, 1.0, -1.0, 0.0])) == (0.75, 0.75)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_association_equals_a_brute_force_enumeration(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    y[:, 0] += 2 * x[:, 0]
    r = C.rank_association(frame(x, y), "x", "y")
    observed, p_greater, p_less = brute_force(x, y)
    assert r.value == pytest.approx(observed, abs=1e-12)
    assert r.p_greater == pytest.approx(p_greater) and r.p_less == pytest.approx(p_less)
    assert r.n_units == 5 and r.n_seeds == 3 and "all 120 arrangements" in r.test


def test_rank_association_within_strata_equals_brute_force():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    strata = [0, 0, 0, 1, 1, 1]
    r = C.rank_association(frame(x, y, strata), "x", "y", stratum="level")
    observed, p_greater, p_less = brute_force(x, y, strata)
    assert (r.value, r.p_greater, r.p_less) == pytest.approx((observed, p_greater, p_less))
    assert "within 2 levels of level" in r.test and "all 36 arrangements" in r.test


def test_a_perfect_ranking_reaches_the_smallest_p_and_five_sources_are_enough():
    y = np.tile(np.arange(5.0)[:, None], (1, 3))
    r = C.rank_association(frame(y + 0.01 * np.arange(3), y), "x", "y")
    assert r.value == pytest.approx(1.0) and r.p_greater == pytest.approx(1 / 120) == r.min_p
    assert C.verdict(r, "increasing", 0.0, 0.05) == "reproduced"
    assert C.verdict(r, "decreasing", 0.0, 0.05) == "not reproduced"
    assert C.verdict(r, "increasing", 1.5, 0.05) == "inconclusive"  # below the declared minimum effect


def test_three_sources_are_underpowered_whatever_the_seeds_and_say_what_is_needed():
    y = np.tile(np.arange(3.0)[:, None], (1, 10))
    r = C.rank_association(frame(y.copy(), y), "x", "y")
    assert r.min_p == pytest.approx(1 / 6)
    assert C.verdict(r, "increasing", 0.0, 0.05) == "underpowered"
    assert r.needed == "needs at least 5 units (sources)"
    rows = C.judge("e", C.ClaimSpec("c", "claim", "paper"), {"primary": {"v": 1}, "direction": "increasing"},
                   lambda view: (r, "m", ""), 0.05)  # fmt: skip
    assert rows[0]["verdict"] == "underpowered" and "needs at least 5" in rows[0]["note"]


def test_rank_association_leaves_out_units_without_every_seed_and_handles_constants():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    x[2, 1] = np.nan
    r = C.rank_association(frame(x, y), "x", "y")
    assert r.n_units == 5 and "1 unit(s) without finite values left out" in r.test
    flat = C.rank_association(frame(np.ones((5, 2)), y[:5]), "x", "y")
    assert math.isnan(flat.value) and C.verdict(flat, "increasing", 0, 0.05) == "inconclusive"


def test_the_interval_is_a_bootstrap_of_whole_seeds():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 4))
    r = C.rank_association(frame(x, x + rng.normal(size=(6, 4))), "x", "y", n_boot=500)
    per_seed = [stats.spearmanr(x[:, s], (x + 0)[:, s])[0] for s in range(4)]
    assert r.lo <= r.value <= r.hi and r.hi <= 1.0 and len(per_seed) == 4
    one = C.rank_association(frame(x[:, :1], x[:, :1]), "x", "y")
    assert math.isnan(one.lo) and math.isnan(one.hi)


def test_sign_flip_is_exact_and_its_smallest_p_is_half_to_the_n():
    r = C.sign_flip([0.5, 1.0, 2.0])
    assert r.p_greater == pytest.approx(1 / 8) == r.min_p and r.p_less == 1.0
    assert C.verdict(r, "increasing", 0, 0.05) == "underpowered" and r.needed == "needs at least 6 seeds"
    six = C.sign_flip([0.5, 1.0, 2.0, 0.3, 0.7, 1.1])
    assert six.p_greater == pytest.approx(1 / 64) and C.verdict(six, "increasing", 0, 0.05) == "reproduced"
    mixed = C.sign_flip([1.0, -1.0, 2.0, -2.0, 0.5, -0.4])
    assert C.verdict(mixed, "increasing", 0, 0.05) == "inconclusive"
    shifted = C.sign_flip([1.1, 1.2, 1.3, 1.4, 1.5, 1.6], null_value=1.0)
    assert shifted.null_value == 1.0 and shifted.p_greater == pytest.approx(1 / 64)


def test_holm_agrees_with_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = [0.01, 0.04, 0.03, 0.2, 0.005]
    np.testing.assert_allclose(C.holm(p), multipletests(p, method="holm")[1])
    with_nan = C.holm([0.01, np.nan, 0.02])
    assert math.isnan(with_nan[1]) and with_nan[0] == pytest.approx(0.02) and with_nan[2] == pytest.approx(0.02)


def result(value, p_greater, p_less, min_p=0.001, null=0.0):
    return C.TestResult(value, p_greater, p_less, min_p, "t", 5, 3, null_value=null)


@pytest.mark.parametrize(("r", "direction", "min_effect", "adjusted", "adequate", "expected"), [
    (result(0.8, 0.01, 0.99), "increasing", 0.0, None, True, "reproduced"),
    (result(0.8, 0.01, 0.99), "increasing", 0.9, None, True, "inconclusive"),
    (result(0.8, 0.01, 0.99), "decreasing", 0.0, None, True, "not reproduced"),
    (result(0.8, 0.03, 0.97), "increasing", 0.0, None, True, "inconclusive"),
    (result(0.8, 0.01, 0.99), "increasing", 0.0, 0.08, True, "inconclusive"),  # Holm pushed it over
    (result(0.8, 0.01, 0.99), "increasing", 0.0, None, False, "inconclusive"),  # the design check failed
    (result(0.8, 0.01, 0.99, min_p=0.05), "increasing", 0.0, None, True, "underpowered"),
    (result(0.9, 0.01, 0.99, null=1.0), "increasing", 0.0, None, True, "inconclusive"),  # below its null value
    (result(math.nan, math.nan, math.nan), "increasing", 0.0, None, True, "inconclusive"),
])  # fmt: skip
def test_verdicts(r, direction, min_effect, adjusted, adequate, expected):
    assert C.verdict(r, direction, min_effect, 0.05, adjusted, adequate) == expected


def test_declarations_lay_a_blocks_claims_over_its_familys():
    family = {"a": {"primary": {"metric": "tau1", "eps": None}, "direction": "increasing", "secondary": [{"x": 1}]}}
    merged = C.declarations(family, {"a": {"primary": {"eps": 0.2}, "min_effect": 0.1}})
    assert merged["a"] == {"primary": {"metric": "tau1", "eps": 0.2}, "direction": "increasing",
                           "secondary": [{"x": 1}], "min_effect": 0.1}  # fmt: skip
    assert family["a"]["primary"]["eps"] is None  # the family's declaration is not changed
    with pytest.raises(KeyError):
        C.declarations(family, {"b": {"direction": "decreasing"}})
    specs = {"a": C.ClaimSpec("a", "", "")}
    assert C.declaration_problems(family, {"b": {}}, specs) == [("claims.b", "unknown claim; this family's claims "
                                                                 "are ['a']")]  # fmt: skip
    assert C.declared_views({"primary": {"m": 1, "o": 2}, "secondary": [{"o": 3}]}) == [{"m": 1, "o": 2},
                                                                                       {"m": 1, "o": 3}]


def test_judge_holm_adjusts_only_the_secondary_views_and_gates_knowledge_claims():
    results = {1: result(0.9, 0.004, 0.99), 2: result(0.9, 0.004, 0.99), 3: result(0.9, 0.02, 0.98)}
    declaration = {"primary": {"v": 1}, "direction": "increasing", "secondary": [{"v": 2}, {"v": 3}]}
    spec = C.ClaimSpec("k", "claim", "paper", knowledge=True)
    rows = C.judge("e", spec, declaration, lambda view: (results[view["v"]], f"m{view['v']}", ""), 0.05,
                   C.Design(True, "ok"))  # fmt: skip
    assert [r["role"] for r in rows] == ["primary", "secondary", "secondary"]
    assert rows[0]["p_adjusted"] == pytest.approx(0.008)  # the primary keeps its own p
    assert [r["p_adjusted"] for r in rows[1:]] == pytest.approx([0.016, 0.04])
    assert [r["verdict"] for r in rows] == ["reproduced", "reproduced", "reproduced"]
    assert list(rows[0]) == C.CLAIM_COLUMNS
    failed = C.judge("e", spec, declaration, lambda view: (results[view["v"]], "m", ""), 0.05, C.Design(False, "no"))
    assert {r["verdict"] for r in failed} == {"inconclusive"} and failed[0]["design"] == "no"


def test_check_rows_pass_only_without_violations():
    assert C.check_row("e", "c", "c", "p", "m", 1e-16, "<= 1e-6", 10, 0)["result"] == "pass"
    assert C.check_row("e", "c", "c", "p", "m", 1.0, "<= 1e-6", 10, 1)["result"] == "fail"
    assert C.check_row("e", "c", "c", "p", "m", 0.0, "<= 1e-6", 0, 0)["result"] == "fail"  # nothing checked


def test_batched_and_plain_unit_permutation_tests_agree():
    rng = np.random.default_rng(4)
    m = {"a": rng.normal(size=(5, 3)), "b": rng.normal(size=(5, 3))}
    plain = C.unit_permutation_test(m, ["a"], lambda q: float(C.spearman_over_units(q["a"], q["b"])))
    batched = C.unit_permutation_test(m, ["a"], lambda q: C.spearman_over_units(q["a"], q["b"]), batched=True)
    assert (plain.value, plain.p_greater, plain.p_less) == pytest.approx(
        (batched.value, batched.p_greater, batched.p_less))
    direct = C.rank_association(frame(m["a"], m["b"]), "x", "y")
    assert (direct.value, direct.p_greater) == pytest.approx((plain.value, plain.p_greater))


def test_spearman_over_units_matches_scipy_and_skips_constant_seeds():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(7, 3))
    x[:, 2] = 1.0
    expected = np.mean([stats.spearmanr(x[:, k], y[:, k])[0] for k in range(2)])
    assert C.spearman_over_units(x, y) == pytest.approx(expected)


def test_design_check_in_seed_standard_deviations():
    means = {"a": 1.0, "b": 0.5, "c": 0.0}
    rows = [{"source": s, "seed": k, "y": m + (0.1 if k else -0.1)} for s, m in means.items() for k in (0, 1)]
    design = C.design_check(pd.DataFrame(rows), "y", 5.0)
    sd = np.sqrt(0.02)  # the pooled within-source SD of (-0.1, +0.1)
    assert design.separation == pytest.approx(1.0 / sd) and design.passed
    assert "a 1.000 vs c 0.000" in design.text
    assert not C.design_check(pd.DataFrame(rows), "y", 10.0).passed
