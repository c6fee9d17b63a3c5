"""Calibration of the claims protocol: for every claim of the configured experiments, simulate data in that
claim's exact design shape under the null (no effect) and under a known monotone effect, run the real verdict
code on it, and count how often it says "reproduced" (docs/claims.md).

``python -m advtransfer.calibration`` (``make calibration``) writes results/calibration.csv with one row per
claim and null: ``experiment, claim, design, level, reps, false_positive_rate, power, effect`` then ``null``,
``false_verdict_rate`` (reproduced or not reproduced) and ``mc_se`` (the Monte-Carlo standard error of the
false-positive rate at the level). ``level`` is the nominal rate of a false "reproduced", alpha / 2.

The nulls (each with the claim's units, seeds and strata):
- ``independent``: x and y (or the replicate values) independent across every model;
- ``seed_offset``: the same, plus an offset shared by every model of a seed (x and y each their own);
- ``source_effects``: x and y each with its own effect per unit (source), unrelated to the other's, plus
  noise: every metric and outcome varies by source in the real designs, so this is the null that matters
  (a test that permutes units within each seed alone fails it; the tests here move whole units);
- for replicate (sign-flip) claims: ``normal`` and ``heavy_tailed`` (Student t, 3 df) replicate noise.
Power: x and y share a source signal ``effect`` times the noise's SD in the claimed direction (for sign-flip
claims, a shift of ``effect`` noise SDs).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from advtransfer import claims as C

COLUMNS = ["experiment", "claim", "design", "level", "reps", "false_positive_rate", "power", "effect", "null",
           "false_verdict_rate", "mc_se"]  # fmt: skip
RANK_NULLS = ("independent", "seed_offset", "source_effects")
SIGN_NULLS = ("normal", "heavy_tailed")
EFFECT = 2.0  # the power simulation's shared signal, in units of the noise's SD
NOISE = 0.3  # the row noise beside unit effects of SD 1 under ``source_effects``


# ------------------------------------------------------------------------------------------ simulation


def _unit_frame(design: C.ClaimDesign) -> pd.DataFrame:
    units = np.repeat(np.arange(design.n_units), design.n_seeds)
    seeds = np.tile(np.arange(design.n_seeds), design.n_units)
    frame = pd.DataFrame({"source": [f"u{u}" for u in units], "seed": seeds})
    if design.strata:
        frame["stratum"] = np.asarray(design.strata)[units]
    return frame


def _column(design: C.ClaimDesign, null: str, rng: np.random.Generator, signal: np.ndarray | None = None):
    """One measured column in the design's shape (rows: units x seeds) under ``null``, plus ``signal`` per unit."""
    u, k = design.n_units, design.n_seeds
    if null == "source_effects":
        values = rng.normal(size=(u, 1)) + NOISE * rng.normal(size=(u, k))
    else:
        values = rng.normal(size=(u, k))
        if null == "seed_offset":
            values = values + 2.0 * rng.normal(size=(1, k))
    if signal is not None:
        values = values + signal[:, None]
    return values.ravel()


def _design_values(design: C.ClaimDesign) -> np.ndarray:
    """The fixed y of a design variable (t, closeness): distinct per unit; or the 0/1 indicator."""
    if design.kind == "indicator":
        return (np.arange(design.n_units) < design.n_positive).astype(float)
    return np.arange(design.n_units, dtype=float)


def simulate_rank(design: C.ClaimDesign, null: str | None, rng: np.random.Generator) -> pd.DataFrame:
    """x and y of a rank claim: under ``null``, or (None) with a shared monotone signal in the claimed direction."""
    frame = _unit_frame(design)
    sign = C.direction_sign(design.direction)
    fixed = design.y_design or design.kind == "indicator"
    if fixed:
        z = _design_values(design)
        z = (z - z.mean()) / (z.std() or 1.0)
        frame["y"] = np.repeat(z, design.n_seeds)
        signal = None if null else sign * EFFECT * z
        frame["x"] = _column(design, null or "independent", rng, signal)
        return frame
    shared = None if null else EFFECT * rng.normal(size=design.n_units)
    frame["y"] = _column(design, null or "independent", rng, shared)
    frame["x"] = _column(design, null or "independent", rng, None if shared is None else sign * shared)
    return frame


def simulate_product(design: C.ClaimDesign, null: str | None, rng: np.random.Generator) -> pd.DataFrame:
    """tau1 (``b``), tau2 (``f``) and the outcome: tau1 tracks the outcome; under the null tau2 has nothing to do
    with it (its own unit effects), under the effect the outcome also rises with tau2. Positive, as tau are."""
    frame = _unit_frame(design)
    s1, s2 = rng.normal(size=design.n_units), rng.normal(size=design.n_units)
    noisy = lambda s: np.repeat(s, design.n_seeds) + NOISE * rng.normal(size=len(frame))  # noqa: E731
    frame["b"], frame["f"] = np.exp(noisy(s1)), np.exp(noisy(s2) if not null else _column(design, null, rng))
    frame["y"] = noisy(s1 + (EFFECT * s2 if not null else 0.0))
    return frame


def _verdict(design: C.ClaimDesign, result: C.TestResult, alpha: float) -> str:
    return C.verdict(result, design.direction, design.min_effect, alpha)


def run_rank(design: C.ClaimDesign, null: str | None, rng, settings: dict[str, Any]) -> str:
    frame = simulate_rank(design, null, rng)
    stratum = "stratum" if design.strata else None
    result = C.rank_association(frame, "x", "y", unit="source", seed="seed", stratum=stratum, **settings)
    return _verdict(design, result, settings["alpha"])


def run_sign(design: C.ClaimDesign, null: str | None, rng, settings: dict[str, Any]) -> str:
    n = design.n_units
    noise = rng.standard_t(3, size=n) / math.sqrt(3.0) if null == "heavy_tailed" else rng.normal(size=n)
    values = noise + (0.0 if null else C.direction_sign(design.direction) * EFFECT)
    return _verdict(design, C.sign_flip(values, **settings), settings["alpha"])


def simulate_matrices(n: int, null: str | None, rng: np.random.Generator, sign: int = 1) -> tuple[np.ndarray, ...]:
    """Two n x n matrices over the same units (a matrix claim): unrelated under ``null`` (``source_effects``: each
    with row and column effects of its own), or the second tracking the first (times ``sign``) with noise."""

    def matrix() -> np.ndarray:
        m = rng.normal(size=(n, n))
        if null == "source_effects":
            m = m / 3 + rng.normal(size=(n, 1)) + rng.normal(size=(1, n))
        return m

    a = matrix()
    return a, (matrix() if null else sign * EFFECT * a + rng.normal(size=(n, n)))


RUNNERS: dict[str, Callable] = {"rank": run_rank, "indicator": run_rank, "sign": run_sign}


def runner_for(design: C.ClaimDesign) -> Callable:
    """The simulation of a design's kind: a generic one here, or its family's (``CALIBRATION_RUNNERS`` of the
    claims module the design names, for a test only that family uses)."""
    if design.kind in RUNNERS:
        return RUNNERS[design.kind]
    return importlib.import_module(design.family).CALIBRATION_RUNNERS[design.kind]


def nulls_of(design: C.ClaimDesign) -> tuple[str, ...]:
    if design.kind == "sign":
        return SIGN_NULLS
    if design.kind in ("matrix", "categories"):
        return ("independent", "source_effects")
    return RANK_NULLS  # with y fixed by design (closeness, an indicator) x's own source effects are the null


def rates(design: C.ClaimDesign, null: str | None, reps: int, settings: dict[str, Any], seed: int) -> pd.Series:
    """Share of ``reps`` simulated data sets per verdict."""
    rng = np.random.default_rng(seed)
    runner = runner_for(design)
    verdicts = [runner(design, null, rng, {**settings, "perm_seed": int(rng.integers(2**31))}) for _ in range(reps)]
    return pd.Series(verdicts).value_counts(normalize=True).reindex(C.VERDICTS, fill_value=0.0)


def calibrate(designs: Sequence[C.ClaimDesign], reps: int, settings: dict[str, Any], seed: int = 0,
              progress: Callable[[str], None] | None = None) -> pd.DataFrame:  # fmt: skip
    """results/calibration.csv's rows (module docstring) for ``designs``, with the tests' ``settings``."""
    level = settings["alpha"] / 2
    rows = []
    for i, design in enumerate(designs):
        power = rates(design, None, reps, settings, seed + 1000 * i)["reproduced"]
        for j, null in enumerate(nulls_of(design)):
            r = rates(design, null, reps, settings, seed + 1000 * i + j + 1)
            rows.append(dict(
                experiment=design.experiment, claim=design.claim_id, design=design.shape, level=level, reps=reps,
                false_positive_rate=float(r["reproduced"]), power=float(power),
                effect=f"shared signal {EFFECT:g} x the noise SD" if design.kind != "sign"
                else f"shift {EFFECT:g} x the replicate SD", null=null,
                false_verdict_rate=float(r["reproduced"] + r["not reproduced"]),
                mc_se=math.sqrt(level * (1 - level) / reps),
            ))  # fmt: skip
            if progress:
                progress(f"{design.experiment} {design.claim_id} ({design.shape}) {null}: "
                         f"false positives {r['reproduced']:.3f}, power {power:.2f}")  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def _within_seed_p(frame: pd.DataFrame, rng: np.random.Generator, n_perm: int) -> float:
    """One-sided p of the mean within-seed Spearman when the units are permuted independently within each seed
    (models as the units; not the protocol's test, see docs/claims.md)."""
    x = frame.pivot(index="source", columns="seed", values="x").to_numpy()
    y = frame.pivot(index="source", columns="seed", values="y").to_numpy()
    perms = np.stack([np.stack([rng.permutation(len(x)) for _ in range(x.shape[1])], axis=1) for _ in range(n_perm)])
    permuted = np.take_along_axis(x[None], perms, axis=1)
    null = C.spearman_over_units(np.concatenate([x[None], permuted]), y)
    return C.permutation_p(null)[0]


def compare_rules(sizes: Sequence[tuple[int, int]], reps: int, alpha: float = 0.05, n_perm: int = 499,
                  seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """For the docs: how often three rules say "reproduced" for a rank claim with no effect, per design size
    (units, seeds) and null: the protocol's test (whole units relabelled); units permuted within each seed; and
    the former rule, a 95 % cluster-bootstrap interval of the pooled Spearman over seeds wholly above 0."""
    from advtransfer.stats import rank_correlations

    rows = []
    for n_units, n_seeds in sizes:
        design = C.ClaimDesign("-", "-", "rank", n_units, n_seeds, "increasing")
        for null in RANK_NULLS:
            rng = np.random.default_rng(seed)
            hits = {"protocol: units relabelled whole": 0, "units permuted within each seed": 0,
                    "former rule: bootstrap interval above 0": 0}  # fmt: skip
            for _ in range(reps):
                frame = simulate_rank(design, null, rng)
                result = C.rank_association(frame, "x", "y", n_perm=n_perm, perm_seed=int(rng.integers(2**31)))
                hits["protocol: units relabelled whole"] += C.verdict(result, "increasing", 0.0, alpha) == "reproduced"
                hits["units permuted within each seed"] += _within_seed_p(frame, rng, n_perm) <= alpha / 2
                boot = rank_correlations(frame, ["x"], "y", cluster="seed", n_boot=500, kendall=False,
                                         seed=int(rng.integers(2**31))).iloc[0]  # fmt: skip
                hits["former rule: bootstrap interval above 0"] += bool(boot["spearman_lo"] > 0)
            rows += [dict(design=design.shape, null=null, rule=rule, reps=reps, rate=n / reps, level=alpha / 2)
                     for rule, n in hits.items()]  # fmt: skip
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- the CLI


def configured_designs(config: dict[str, Any], experiments: Sequence[str] | None = None) -> list[C.ClaimDesign]:
    """The claim designs of the config's experiments (or of ``experiments``), from each family's module."""
    from advtransfer import families

    chosen = list(experiments or config["experiments"])
    designs = []
    for name, family, block in families.experiments(config):
        if name not in chosen:
            continue
        declared = C.declarations(config["claims"].get(family.name), (block or {}).get("claims"))
        module = f"{family.module}.claims"
        designs += [d if d.family else dataclasses.replace(d, family=module)
                    for d in family.load("claims").claim_designs(name, block, declared, config)]  # fmt: skip
    return designs


def main(argv: Sequence[str] | None = None) -> int:
    from advtransfer import config as configuration
    from advtransfer import families

    parser = argparse.ArgumentParser(prog="python -m advtransfer.calibration", description=__doc__.split("\n\n")[0])
    parser.add_argument("--configfile", nargs="*", default=[], help="config files laid over config.yaml")
    parser.add_argument("--experiments", nargs="*", help="experiments (default: the config's `experiments`)")
    parser.add_argument("--reps", type=int, default=1000, help="simulated data sets per claim and null")
    parser.add_argument("--n-perm", type=int, default=999, help="random arrangements of a Monte-Carlo test")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results/calibration.csv")
    parser.add_argument("--compare", action="store_true", help="also write <out>_rules.csv: the protocol's rank test "
                        "next to permuting within seeds and the former bootstrap rule, on 3x2, 5x3 and 6x2 designs")
    args = parser.parse_args(argv)
    config = configuration.validate(configuration.load([configuration.ROOT / "config.yaml", *args.configfile]))
    chosen = families.table(config)
    families.normalise(config, chosen)  # the blocks as the workflow reads them
    for key, problem in families.config_problems(config, chosen):
        parser.error(f"config key {key}: {problem}")
    protocol = config["reproduction"]
    settings = {**C.test_settings(protocol), "n_perm": args.n_perm, "n_boot": 200}
    table = calibrate(configured_designs(config, args.experiments), args.reps, settings, args.seed,
                      progress=lambda line: print(line, file=sys.stderr))  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from advtransfer.io import save_csv

    save_csv(out, table)
    if args.compare:
        save_csv(out.with_name(out.stem + "_rules.csv"), compare_rules([(3, 2), (5, 3), (6, 2)], args.reps))
    worst = table["false_positive_rate"] - table["level"] - 3 * table["mc_se"]
    verdict = ("every rate within 3 Monte-Carlo SEs of its level" if (worst <= 0).all()
               else f"{int((worst > 0).sum())} rows above level + 3 SE")  # fmt: skip
    print(f"{len(table)} rows -> {out}; largest false-positive rate {table['false_positive_rate'].max():.3f} at "
          f"level {table['level'].max():g}; {verdict}")
    return 0 if (worst <= 0).all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
