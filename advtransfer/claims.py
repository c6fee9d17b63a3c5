"""The one claims protocol (docs/claims.md): every family judges the papers' claims through these functions.

A claim is declared in config before the run (``claims.<family>.<claim id>``): ONE primary view (the
measurement that decides the verdict), the claimed ``direction``, the smallest effect that counts
(``min_effect``) and secondary views (reported, Holm-adjusted, never deciding). A family turns a view into a
:class:`TestResult` with one of the calibrated tests below; :func:`judge` turns the declaration and the results
into the rows of the experiment's claims.csv. Checks (identities, bounds, ranges: they can only fail through a
bug) are :func:`check_row` rows, counted apart.

The tests (models are the units; images are nested in models and never counted as units):

- :func:`rank_association`: does ``x`` rank the units (sources) like ``y``? The statistic is the mean over
  cells (one seed, or one seed and one level of a known design factor) of Spearman's rho across the units of
  the cell. The null permutes whole units (a source keeps all its seeds) within their stratum, which is exact
  when x carries source effects unrelated to y's (the realistic null: every metric and every outcome varies by
  source), with or without per-seed offsets. Permuting units independently within each seed is not: with
  independent source effects of x and y it says "significant" far above its level (docs/claims.md gives the
  rates; ``python -m advtransfer.calibration`` measures them).
- :func:`sign_flip`: are per-replicate values (one per seed: an independent repetition of the whole
  experiment) on the claimed side of a threshold? Exact sign flips of their mean.
- any other permutation statistic (e.g. a Mantel test of two matrices) through :func:`permutation_p` and
  :func:`unit_permutations`.

Verdicts (two-sided level ``alpha``; each direction at ``alpha / 2``): ``underpowered`` when even a perfect
effect could not reach ``alpha / 2`` in this design (with the size that would); else ``reproduced`` when the
claimed direction's p <= alpha / 2 and the effect is at least ``min_effect`` beyond the test's null value;
``not reproduced`` when the other direction's p <= alpha / 2; ``inconclusive`` otherwise (and whenever the
design check of a knowledge-transfer claim failed). Pure numpy / pandas: no torch.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

VERDICTS = ("reproduced", "not reproduced", "inconclusive", "underpowered")
CHECK_RESULTS = ("pass", "fail")
DIRECTIONS = {"increasing": 1, "decreasing": -1}
CLAIM_COLUMNS = [
    "experiment", "claim_id", "claim", "paper", "role", "view", "measurement", "value", "lo", "hi", "null_value",
    "p_value", "p_adjusted", "min_p", "test", "n_units", "n_seeds", "direction", "min_effect", "design",
    "design_passed", "verdict", "note",
]  # fmt: skip
CHECK_COLUMNS = ["experiment", "check_id", "check", "paper", "measurement", "value", "bound", "rows", "violations",
                 "result", "note"]  # fmt: skip
_TIE = 1e-12  # permuted statistics within this of the observed one count as "as extreme" (float noise)
MAX_EXACT = 10_000  # enumerate every arrangement up to this many, else sample


@dataclass(frozen=True)
class TestResult:
    """One view's test: the statistic (``value``, with an interval ``lo``, ``hi`` reported beside the
    verdict, never deciding it), the one-sided p-values for a value above / below ``null_value``, the
    smallest one-sided p the design can give at all (``min_p``), what was tested and on how many units."""

    value: float
    p_greater: float
    p_less: float
    min_p: float
    test: str
    n_units: int
    n_seeds: int
    lo: float = math.nan
    hi: float = math.nan
    null_value: float = 0.0
    needed: str = ""  # the design that could reach the level, said when it cannot

    @property
    def p_two_sided(self) -> float:
        return min(1.0, 2.0 * min(self.p_greater, self.p_less))


def untestable(reason: str, n_units: int = 0, n_seeds: int = 0, value: float = math.nan) -> TestResult:
    """A view that cannot be tested at all (too few units, a constant column): inconclusive, with the reason."""
    return TestResult(value, math.nan, math.nan, math.nan, reason, n_units, n_seeds)


# ------------------------------------------------------------------------------------------ permutations


def arrangements(strata: Sequence) -> int:
    """How many ways the units can be permuted within their strata: the product of n_h! over the strata."""
    counts = pd.Series(list(strata)).value_counts()
    return int(np.prod([math.factorial(int(c)) for c in counts])) if len(counts) else 1


def unit_permutations(strata: Sequence, n_perm: int, seed: int, max_exact: int = MAX_EXACT) -> tuple[np.ndarray, bool]:
    """Permutations of the units 0..U-1 that move each unit only within its stratum, as a (P, U) index array
    whose first row is the identity: every arrangement when there are at most ``max_exact`` (exact: True),
    else the identity and ``n_perm`` random ones (numpy Generator from ``seed``; exact: False)."""
    strata = np.asarray(list(strata))
    groups = [np.flatnonzero(strata == s) for s in pd.unique(strata)]
    if arrangements(strata) <= max_exact:
        per_group = [list(itertools.permutations(g)) for g in groups]
        out = []
        for combo in itertools.product(*per_group):
            perm = np.arange(len(strata))
            for g, image in zip(groups, combo):
                perm[g] = image
            out.append(perm)
        return np.asarray(out, dtype=np.intp), True
    rng = np.random.default_rng(seed)
    out = np.tile(np.arange(len(strata)), (int(n_perm) + 1, 1))
    for g in groups:
        out[1:, g] = rng.permuted(np.tile(g, (int(n_perm), 1)), axis=1)
    return out, False


def permutation_p(null: np.ndarray) -> tuple[float, float]:
    """One-sided p-values (greater, less) of the observed statistic ``null[0]`` against all of ``null`` (the
    identity arrangement included, so p >= 1 / len(null)): the share of arrangements at least as extreme."""
    null = np.asarray(null, dtype=float)
    observed = null[0]
    return float(np.mean(null >= observed - _TIE)), float(np.mean(null <= observed + _TIE))


def needed_units(counts: Sequence[int], alpha_one_sided: float, noun: str = "units (sources)") -> str:
    """What a unit-permutation design needs to reach ``alpha_one_sided``: the fewest units (per stratum, when
    ``counts`` has several strata) whose arrangements can give a p that small."""
    n = 2
    while 1.0 / math.factorial(n) ** len(counts) > alpha_one_sided:
        n += 1
    return f"needs at least {n} {noun}" + (f" in each of {len(counts)} strata" if len(counts) > 1 else "")


# ---------------------------------------------------------------------------------------- rank association


def _centred_ranks(values: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Per cell (a column of ``values`` restricted to one stratum), average ranks centred and scaled to unit
    norm; 0 in cells where the values are constant (no ranking to correlate)."""
    out = np.zeros_like(values, dtype=float)
    for members in cells:
        block = values[members]  # (units of the stratum, seeds)
        ranks = stats.rankdata(block, axis=0)
        ranks -= ranks.mean(axis=0, keepdims=True)
        norm = np.sqrt((ranks * ranks).sum(axis=0, keepdims=True))
        out[members] = np.divide(ranks, norm, out=np.zeros_like(ranks), where=norm > 0)
    return out


def _cell_statistics(rx: np.ndarray, ry: np.ndarray, cells: list[np.ndarray], perms: np.ndarray) -> np.ndarray:
    """(P, cells x seeds) Spearman's rho of every arrangement in every cell (NaN where a side is constant)."""
    out = []
    for members in cells:
        x = rx[perms[:, members]]  # (P, units, seeds): the permuted units' ranks (they stay in the stratum)
        valid = (np.abs(rx[members]).sum(0) > 0) & (np.abs(ry[members]).sum(0) > 0)
        rho = (x * ry[members][None]).sum(1)
        out.append(np.where(valid[None], rho, np.nan))
    return np.concatenate(out, axis=1)


def _unit_matrix(frame: pd.DataFrame, column: str, unit: str, seed: str) -> pd.DataFrame:
    """(units x seeds) table of ``column`` (the mean of the rows of a unit and seed; NaN where there is none)."""
    keys = pd.DataFrame({"unit": frame[unit].to_numpy(), "seed": frame[seed].to_numpy(),
                         "value": pd.to_numeric(frame[column], errors="coerce").to_numpy(float)})  # fmt: skip
    return keys.groupby(["unit", "seed"], sort=True)["value"].mean().unstack("seed")


def rank_association(
    frame: pd.DataFrame,
    x: str,
    y: str,
    *,
    unit: str = "source",
    seed: str = "seed",
    stratum: str | None = None,
    n_perm: int = 9999,
    perm_seed: int = 0,
    n_boot: int = 2000,
    level: float = 0.95,
    alpha: float = 0.05,
) -> TestResult:
    """Does ``x`` rank the units like ``y`` (Spearman within each seed, or within each seed and level of the
    known design factor ``stratum``), beyond what units relabelled at random give?

    The rows of ``frame`` are models (one per unit and seed). The statistic is the mean over cells (a seed, or a
    seed and a stratum level, with at least two units) of Spearman's rho between x and y across the cell's
    units. The null moves whole units: x of unit u (all its seeds) goes to unit pi(u) of the same stratum, for
    every arrangement when there are at most MAX_EXACT, else ``n_perm`` random ones (``perm_seed``). Units
    lacking a finite x or y on some seed are left out (said in the test text). The interval (``level``) is a
    bootstrap of the seeds (each seed's cell statistics resampled whole, ``n_boot`` draws from ``perm_seed``),
    beside the verdict. ``min_p``: the p-value the same test gives when x ranks every cell exactly as y does.
    """
    columns = [x, y] + ([stratum] if stratum else [])
    missing = [c for c in [*columns, unit, seed] if c not in frame.columns]
    if missing:
        raise KeyError(f"rank_association: columns {missing} not in the frame (has {list(frame.columns)})")
    mx, my = _unit_matrix(frame, x, unit, seed), _unit_matrix(frame, y, unit, seed)
    complete = np.isfinite(mx.to_numpy(float)).all(1) & np.isfinite(my.to_numpy(float)).all(1)
    dropped = int((~complete).sum())
    mx, my = mx[complete], my[complete]
    units, n_seeds = list(mx.index), mx.shape[1]
    if stratum:
        levels = frame.drop_duplicates(unit).set_index(unit)[stratum].reindex(units).to_numpy()
    else:
        levels = np.zeros(len(units), dtype=int)
    cells = [np.flatnonzero(levels == s) for s in pd.unique(levels) if (levels == s).sum() >= 2]
    if not cells or n_seeds == 0:
        return untestable(f"fewer than 2 units with finite {x} and {y} per cell", len(units), n_seeds)
    X, Y = mx.to_numpy(float), my.to_numpy(float)
    rx, ry = _centred_ranks(X, cells), _centred_ranks(Y, cells)
    perms, exact = unit_permutations(levels, n_perm, perm_seed)
    per_cell = _cell_statistics(rx, ry, cells, perms)  # (P, cells * seeds)
    if np.isnan(per_cell[0]).all():
        return untestable(f"{x} or {y} is constant within every cell", len(units), n_seeds)
    null = np.nanmean(per_cell, axis=1)
    p_greater, p_less = permutation_p(null)
    min_p = _smallest_p(ry, levels, len(perms), exact)
    lo, hi = _seed_interval(per_cell[0].reshape(len(cells), n_seeds), n_boot, level, perm_seed)
    counts = [len(c) for c in cells]
    what = (f"permutation of {len(units)} units" + (f" within {len(cells)} levels of {stratum}" if stratum else "")
            + f", each keeping its {n_seeds} seed(s): " + (f"all {len(perms)} arrangements" if exact
            else f"{len(perms) - 1} random arrangements") + (f"; {dropped} unit(s) without finite values left out"
            if dropped else ""))  # fmt: skip
    return TestResult(
        value=float(null[0]), p_greater=p_greater, p_less=p_less, min_p=min_p, test=what, n_units=len(units),
        n_seeds=n_seeds, lo=lo, hi=hi, needed=needed_units(counts, alpha / 2),
    )  # fmt: skip


def _smallest_p(ry: np.ndarray, levels: np.ndarray, n_arrangements: int, exact: bool) -> float:
    """The p-value of a perfect ranking (x ranked as y in every cell): the share of arrangements that give it
    too, i.e. that move every unit to one of its stratum with the same ranks of y on every seed (ties in y, e.g.
    a design value or a 0 / 1 indicator, let several do); a Monte-Carlo test cannot go below 1 / its draws."""
    share = 1.0
    for level in pd.unique(levels):
        members = ry[levels == level]
        _, counts = np.unique(np.round(members, 12), axis=0, return_counts=True)
        share *= float(np.prod([math.factorial(int(c)) for c in counts])) / math.factorial(len(members))
    return share if exact else max(share, 1.0 / n_arrangements)


def _seed_interval(per_cell_seed: np.ndarray, n_boot: int, level: float, seed: int) -> tuple[float, float]:
    """Percentile interval of the mean cell statistic when the seeds (columns) are resampled with replacement."""
    per_seed = np.nanmean(per_cell_seed, axis=0)
    per_seed = per_seed[np.isfinite(per_seed)]
    if per_seed.size < 2:
        return math.nan, math.nan
    draws = np.random.default_rng(seed).integers(0, per_seed.size, size=(n_boot, per_seed.size))
    lo, hi = np.quantile(per_seed[draws].mean(axis=1), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


# ------------------------------------------------------------------------------------------- sign flips


def sign_flips(n: int, n_perm: int, seed: int, max_exact: int = MAX_EXACT) -> tuple[np.ndarray, bool]:
    """(P, n) matrix of +-1 whose first row is all +1: every sign pattern when 2^n <= max_exact, else n_perm
    random ones after the identity."""
    if 2**n <= max_exact:
        grid = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
        return grid, True
    rng = np.random.default_rng(seed)
    signs = rng.choice((1.0, -1.0), size=(int(n_perm) + 1, n))
    signs[0] = 1.0
    return signs, False


def sign_flip(
    values: Sequence[float],
    *,
    null_value: float = 0.0,
    n_perm: int = 9999,
    perm_seed: int = 0,
    n_boot: int = 2000,
    level: float = 0.95,
    alpha: float = 0.05,
    what: str = "seeds",
) -> TestResult:
    """Are the replicate values (one per seed: each an independent repetition of the whole design) on one side
    of ``null_value``? The statistic is the mean of ``values - null_value``; the null flips the sign of each
    replicate's deviation (exact over all 2^n patterns when few). Value: the mean of ``values``; interval: a
    bootstrap of the replicates; ``min_p`` = 1 / 2^n, the p of n replicates all on one side."""
    v = np.asarray(list(values), dtype=float)
    v = v[np.isfinite(v)]
    n = v.size
    if n == 0:
        return untestable(f"no finite value over the {what}", 0, 0)
    d = v - null_value
    signs, exact = sign_flips(n, n_perm, perm_seed)
    null = (signs * d[None]).mean(axis=1)
    p_greater, p_less = permutation_p(null)
    best = (signs * np.ones(n)[None]).mean(axis=1)
    lo = hi = math.nan
    if n >= 2:
        draws = np.random.default_rng(perm_seed).integers(0, n, size=(n_boot, n))
        lo, hi = (float(q) for q in np.quantile(v[draws].mean(axis=1), [(1 - level) / 2, (1 + level) / 2]))
    needed = math.ceil(math.log2(1 / (alpha / 2)))
    return TestResult(
        value=float(v.mean()), p_greater=p_greater, p_less=p_less, min_p=permutation_p(best)[0],
        test=f"sign flips of {n} {what} (" + (f"all {len(signs)} patterns)" if exact else f"{len(signs) - 1} random)"),
        n_units=n, n_seeds=n, lo=lo, hi=hi, null_value=null_value, needed=f"needs at least {needed} {what}",
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- verdicts


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment (NaN p-values are left out and stay NaN)."""
    p = np.asarray(list(p_values), dtype=float)
    out = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m, running = len(order), 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        out[idx] = running
    return out


def direction_sign(direction: str | int) -> int:
    if direction in (1, -1):
        return int(direction)
    try:
        return DIRECTIONS[direction]
    except KeyError:
        raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}") from None


def verdict(result: TestResult, direction: str | int, min_effect: float, alpha: float,
            p_two_sided: float | None = None, adequate: bool = True) -> str:  # fmt: skip
    """The verdict of one view (module docstring). ``p_two_sided``: an adjusted p (Holm, for secondary views)
    in place of the result's own; ``adequate``: False when the claim's design check failed (inconclusive)."""
    sign = direction_sign(direction)
    p_claimed, p_other = (result.p_greater, result.p_less) if sign > 0 else (result.p_less, result.p_greater)
    if not all(map(math.isfinite, (result.value, p_claimed, p_other, result.min_p))):
        return "inconclusive"
    if result.min_p > alpha / 2:
        return "underpowered"
    if not adequate:
        return "inconclusive"
    p = result.p_two_sided if p_two_sided is None else p_two_sided  # = 2 min(p_claimed, p_other) unadjusted
    if not (math.isfinite(p) and p <= alpha):
        return "inconclusive"
    effect = sign * (result.value - result.null_value)
    if p_claimed <= p_other:
        return "reproduced" if effect > 0 and effect >= min_effect else "inconclusive"
    return "not reproduced"


@dataclass(frozen=True)
class ClaimSpec:
    """What a paper claims (facts, kept with the family): its id, the claim in words, where the paper says it,
    and whether it is a knowledge-transfer claim (its verdict needs the design check)."""

    id: str
    claim: str
    paper: str
    knowledge: bool = False


def declared_views(declaration: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The views of a claim's declaration: the primary, then each secondary view filled in from the primary
    (a secondary names only what differs)."""
    primary = dict(declaration["primary"])
    return [primary] + [{**primary, **dict(s)} for s in declaration.get("secondary") or []]


def declared_parts(declaration: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(config key, view) of the views a declaration spells out: the primary, then each secondary view filled
    in from the primary but only its own keys kept (so a problem of the primary is named once)."""
    primary = dict(declaration["primary"])
    return [("primary", primary)] + [(f"secondary[{i}]", dict(s)) for i, s in enumerate(declaration.get("secondary")
                                                                                       or [])]  # fmt: skip


def view_text(view: Mapping[str, Any]) -> str:
    """``key=value, ...`` of a view, in its keys' order (the claims.csv ``view`` column)."""
    return ", ".join(f"{k}={v}" for k, v in view.items())


@dataclass(frozen=True)
class Design:
    """A knowledge-transfer claim's design check: ``passed`` and its text (stats.design_check)."""

    passed: bool
    text: str
    separation: float = math.nan


Measure = Callable[[dict[str, Any]], tuple[TestResult, str, str]]


def judge(experiment: str, spec: ClaimSpec, declaration: Mapping[str, Any], measure: Measure, alpha: float,
          design: Design | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """claims.csv rows of one claim: ``measure(view) -> (TestResult, measurement text, note)`` for the primary
    view (its own p decides) and each secondary view (Holm-adjusted across the secondaries). A knowledge claim
    (``spec.knowledge``) is inconclusive unless its ``design`` check passed."""
    views = declared_views(declaration)
    direction, min_effect = declaration["direction"], float(declaration.get("min_effect", 0.0))
    measured = [measure(v) for v in views]
    adjusted = holm([r.p_two_sided for r, _, _ in measured[1:]])
    adequate = design.passed if (spec.knowledge and design is not None) else True
    rows = []
    for i, (view, (result, measurement, note)) in enumerate(zip(views, measured)):
        p_adj = result.p_two_sided if i == 0 else float(adjusted[i - 1])
        v = verdict(result, direction, min_effect, alpha, None if i == 0 else p_adj, adequate)
        if v == "underpowered" and result.needed:
            note = "; ".join(x for x in (f"underpowered: the smallest p this design allows is {result.min_p:.3g} "
                                         f"> {alpha / 2:g}; {result.needed}", note) if x)  # fmt: skip
        rows.append(dict(
            experiment=experiment, claim_id=spec.id, claim=spec.claim, paper=spec.paper,
            role="primary" if i == 0 else "secondary", view=view_text(view), measurement=measurement,
            value=result.value, lo=result.lo, hi=result.hi, null_value=result.null_value,
            p_value=result.p_two_sided, p_adjusted=p_adj, min_p=result.min_p, test=result.test,
            n_units=result.n_units, n_seeds=result.n_seeds, direction=str(direction), min_effect=min_effect,
            design=design.text if (spec.knowledge and design) else "", design_passed=adequate, verdict=v, note=note,
        ))  # fmt: skip
    return rows


def check_row(experiment: str, check_id: str, check: str, paper: str, measurement: str, value: float, bound: str,
              rows: int, violations: int, note: str = "") -> dict[str, Any]:  # fmt: skip
    """A checks.csv row: an identity, bound or range that every one of ``rows`` must satisfy (pass), or not."""
    result = "pass" if rows > 0 and violations == 0 else "fail"
    return dict(experiment=experiment, check_id=check_id, check=check, paper=paper, measurement=measurement,
                value=float(value), bound=bound, rows=int(rows), violations=int(violations), result=result,
                note=note)  # fmt: skip


def claims_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=CLAIM_COLUMNS)


def checks_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=CHECK_COLUMNS)


def with_value(result: TestResult, value: float, lo: float = math.nan, hi: float = math.nan,
               null_value: float | None = None) -> TestResult:  # fmt: skip
    """The same test reported with another statistic on another scale (e.g. a ratio beside a test of log ratios,
    an AUC beside a rank test): its value, interval and the value of no effect on that scale."""
    null = result.null_value if null_value is None else float(null_value)
    return replace(result, value=float(value), lo=float(lo), hi=float(hi), null_value=null)


# ------------------------------------------------------------------------------------------- declarations


def test_settings(protocol: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of the tests from the config's ``reproduction`` block (the protocol)."""
    return dict(n_perm=int(protocol["n_perm"]), perm_seed=int(protocol["seed"]), n_boot=int(protocol["n_boot"]),
                level=float(protocol["level"]), alpha=float(protocol["alpha"]))  # fmt: skip


def declarations(family_claims: Mapping[str, Any] | None, block_claims: Mapping[str, Any] | None) -> dict[str, dict]:
    """The claims of one experiment: its family's declarations (config ``claims.<family>``) with the block's own
    ``claims:`` laid over them claim by claim (a block's ``primary`` changes only the keys it names; its
    ``secondary`` list, direction and min_effect replace the family's)."""
    out = {cid: dict(decl) for cid, decl in (family_claims or {}).items()}
    for cid, override in (block_claims or {}).items():
        if cid not in out:
            raise KeyError(cid)
        merged = {**out[cid], **{k: v for k, v in override.items() if k != "primary"}}
        merged["primary"] = {**out[cid]["primary"], **(override.get("primary") or {})}
        out[cid] = merged
    return out


def declaration_problems(family_claims: Mapping[str, Any] | None, block_claims: Mapping[str, Any] | None,
                         specs: Mapping[str, ClaimSpec]) -> list[tuple[str, str]]:  # fmt: skip
    """(config key, problem) for claims a block or family declares that its family does not know."""
    problems = [(f"claims.{cid}", f"unknown claim; this family's claims are {sorted(specs)}")
                for cid in (block_claims or {}) if cid not in (family_claims or {}) or cid not in specs]  # fmt: skip
    for cid, declared in (family_claims or {}).items():
        own = (block_claims or {}).get(cid) or {}
        problems += unknown_view_keys(declared["primary"], own, f"claims.{cid}")
    return problems


def unknown_view_keys(primary: Mapping[str, Any], declaration: Mapping[str, Any],
                      where: str) -> list[tuple[str, str]]:  # fmt: skip
    """(config key, problem) for each key of ``declaration``'s primary (a block's override) and secondary views
    that ``primary`` (the family's declared primary view) lacks: such a key would be ignored silently."""
    views = [(f"{where}.primary", declaration.get("primary") or {})]
    views += [(f"{where}.secondary[{i}]", view) for i, view in enumerate(declaration.get("secondary") or [])]
    return [(key, f"unknown view key {k!r}; this claim's view has {sorted(primary)}")
            for key, view in views for k in view if k not in primary]  # fmt: skip


def unit_permutation_test(matrices: Mapping[str, np.ndarray], permuted: Sequence[str],
                          statistic: Callable[[Mapping[str, np.ndarray]], Any], *, strata: Sequence | None = None,
                          n_perm: int = 9999, perm_seed: int = 0, alpha: float = 0.05, what: str = "units",
                          batched: bool = False, **_: Any) -> TestResult:  # fmt: skip
    """Any statistic of unit-by-seed matrices (rows: units, e.g. sources; columns: seeds), tested by moving the
    rows of the ``permuted`` matrices together between units of the same stratum (every arrangement when few,
    else ``n_perm`` random ones) while the others stay: p-values as :func:`permutation_p` (an undefined
    arrangement counts as extreme); ``min_p`` the share of one arrangement (a perfect effect, no ties).
    ``batched``: the statistic takes the permuted matrices stacked over arrangements, (P, units, seeds), and
    returns the P values at once. The caller reports the interval (``with_value``)."""
    first = next(iter(matrices.values()))
    n_units, n_seeds = first.shape[0], (first.shape[1] if first.ndim > 1 else 1)
    strata = np.zeros(n_units, dtype=int) if strata is None else np.asarray(list(strata))
    perms, exact = unit_permutations(strata, n_perm, perm_seed)
    if batched:
        null = np.asarray(statistic({k: (m[perms] if k in permuted else m) for k, m in matrices.items()}), float)
    else:
        null = np.array([statistic({k: (m[p] if k in permuted else m) for k, m in matrices.items()}) for p in perms],
                        dtype=float)  # fmt: skip
    if not np.isfinite(null[0]):
        return untestable(f"the statistic is undefined on the observed {what}", n_units, n_seeds)
    p_greater, p_less = permutation_p(np.where(np.isfinite(null), null, null[0]))
    counts = pd.Series(strata).value_counts().tolist()
    how = f"all {len(perms)} arrangements" if exact else f"{len(perms) - 1} random arrangements"
    return TestResult(
        value=float(null[0]), p_greater=p_greater, p_less=p_less, min_p=1.0 / len(perms), n_units=n_units,
        n_seeds=n_seeds, test=f"permutation of {n_units} {what}: {how}", needed=needed_units(counts, alpha / 2),
    )  # fmt: skip


def spearman_over_units(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean over seeds (the last axis) of Spearman's rho across units (the axis before it) of x (..., U, K) with
    y (U, K), for every leading index (e.g. arrangements); seeds where either side is constant are left out."""
    rx, ry = stats.rankdata(x, axis=-2), stats.rankdata(y, axis=-2)
    rx = rx - rx.mean(axis=-2, keepdims=True)
    ry = ry - ry.mean(axis=-2, keepdims=True)
    den = np.sqrt((rx * rx).sum(-2) * (ry * ry).sum(-2))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(den > 0, (rx * ry).sum(-2) / den, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # every seed constant: NaN, said by the caller
        return np.nanmean(rho, axis=-1)


@dataclass(frozen=True)
class ClaimDesign:
    """A claim's primary test in the shape of its experiment, for the calibration (advtransfer.calibration):
    ``kind`` 'rank' (rank_association of a measured x with y: y a fixed design value per unit when
    ``y_design``, a binary indicator with ``n_positive`` ones when 'indicator', else a measurement), 'sign'
    (sign flips over ``n_units`` replicates), 'matrix' (a statistic of n x n matrices over ``n_units``), or a
    kind of the family's own, simulated by ``CALIBRATION_RUNNERS[kind]`` of the claims module ``family``;
    ``strata``: the stratum of each unit (rank tests within levels of a design factor)."""

    experiment: str
    claim_id: str
    kind: str
    n_units: int
    n_seeds: int
    direction: str
    min_effect: float = 0.0
    y_design: bool = False
    n_positive: int = 0
    strata: tuple = ()
    family: str = ""  # the claims module of the family (set by the calibration from the table of families)

    @property
    def shape(self) -> str:
        levels = f" in {len(set(self.strata))} strata" if self.strata else ""
        if self.kind == "sign":
            return f"{self.n_units} replicates (seeds)"
        if self.kind in ("matrix", "categories"):
            return f"{self.n_units} x {self.n_units} matrix units"
        return f"{self.n_units} units{levels} x {self.n_seeds} seeds"


def design_check(frame: pd.DataFrame, outcome: str, min_separation: float, unit: str = "source",
                 what: str = "sources") -> Design:  # fmt: skip
    """The design check of a claim whose outcome must vary across the units by more than the seed noise (one
    unit for every family: seed standard deviations; advtransfer.stats.outcome_separation)."""
    from advtransfer.stats import outcome_separation

    r = outcome_separation(frame, [outcome], unit=unit).iloc[0]
    separation = float(r["separation"]) if "separation" in r and pd.notna(r["separation"]) else math.nan
    passed = not math.isnan(separation) and separation >= min_separation
    if math.isnan(separation):
        text = f"design check: {outcome} has no seed-to-seed spread to compare with (one seed per unit?)"
    else:
        text = (f"design check: the {what}' mean {outcome} spans {separation:.1f} seed SDs ({r['highest']} "
                f"{r['highest_mean']:.3f} vs {r['lowest']} {r['lowest_mean']:.3f}; needed {min_separation:g})")
    return Design(passed, text + ("" if passed else ": failed"), separation)


def family_claims_problems(config: dict[str, Any], families: Sequence[Any]) -> Iterator[tuple[str, str]]:
    """(config key, problem) for claims a family or a block declares that the family does not know, and for views
    the family refuses (its claims module's optional ``claims_problems`` hook). It lives here, not in the family
    table, so that only the jobs that judge claims have this module in their code hash (advtransfer/code.py)."""
    from advtransfer import families as table

    for family in families:
        code = family.load("claims")
        declared = config["claims"].get(family.name) or {}
        unknown = sorted(set(declared) - set(code.CLAIMS))
        if unknown:
            yield f"claims.{family.name}", f"{unknown} are not claims of this family; its claims: {sorted(code.CLAIMS)}"
        for cid, declaration in declared.items():
            yield from unknown_view_keys(declaration["primary"], {"secondary": declaration.get("secondary")},
                                         f"claims.{family.name}.{cid}")  # fmt: skip
        for name, block in family.blocks(config).items():
            own = (block or {}).get("claims")
            for key, problem in declaration_problems(declared, own, code.CLAIMS):
                yield f"{table.where(family, name)}.{key}", problem
            hook = getattr(code, "claims_problems", None)
            for key, problem in hook(block, declarations(declared, own), config) if hook and not unknown else ():
                yield f"{table.where(family, name)}.claims.{key}", problem
