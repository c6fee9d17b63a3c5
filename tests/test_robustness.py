"""The robustness family: its config -> jobs, its summary statistics and claims, its evaluation, and a tiny
end-to-end run."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from advtransfer import claims as C
from advtransfer import config as configuration
from advtransfer import evaluation
from advtransfer.families.robustness import claims as family
from advtransfer.families.robustness import jobs as robustness
from advtransfer.models import SmallCNN
from tests.workflow_helpers import REPO, copy_workflow, snakemake

BLOCK = yaml.safe_load((REPO / "tests/configs/tiny_robustness.yaml").read_text())["robustness"]["tinyrobustness"]


def block(**changes):
    """The tiny block with the schema's defaults that the code reads filled in, and ``changes``."""
    b = {**BLOCK, "reference_seed": 0, "reference_train": None, "metrics": BLOCK["metrics"],
         "claims": dict(BLOCK["claims"])}  # fmt: skip
    b["target"] = {**b["target"]}
    b["split"] = {"source_pool_fraction": None, **b["split"]}
    b.update(changes)
    return b


def test_network_jobs_one_source_per_scheme_and_seed_with_its_objective_and_teacher():
    jobs = robustness.network_jobs("x", block(), {})
    sources = {k: v for k, v in jobs["models"].items() if k.startswith("source_")}
    assert set(sources) == {f"source_{s}_seed{k}" for s in ("ce", "pgd_at", "rrm") for k in (0, 1)}
    assert sources["source_pgd_at_seed1"]["objective"] == "pgd_at"
    assert sources["source_pgd_at_seed1"]["objective_params"] == {"eps": 0.1, "steps": 2, "step_size": 0.05}
    assert sources["source_rrm_seed1"]["teacher"] == "source_pgd_at_seed1"
    assert "teacher" not in sources["source_ce_seed0"]
    assert (
        jobs["models"]["reference"]["objective"] == "ce" and jobs["models"]["reference"]["classes"] == ["6", "7", "8"]
    )
    # disjoint classes of one labelling are disjoint images: no pool halves the data; sources keep a test part
    assert all(s["pool"] is None for s in jobs["splits"].values())
    assert all(s["test"] for s in jobs["splits"].values())
    assert set(jobs["splits"]) == {"source", "target"} and {m["split"] for m in sources.values()} == {"source"}
    assert {e["labels"]["scheme"] for e in jobs["evaluations"].values()} == {"ce", "pgd_at", "rrm"}


def test_scheme_overrides_architecture_and_training():
    b = block()
    b["schemes"] = {**b["schemes"], "lip": {"objective": "ce", "model": "lipschitz_mlp"},
                    "free": {"objective": "free_at", "params": {"eps": 0.1}, "train": {"epochs": 1, "replays": 3}}}
    jobs = robustness.network_jobs("x", b, {})
    assert jobs["models"]["source_lip_seed0"]["architecture"] == "lipschitz_mlp"
    assert jobs["models"]["source_free_seed0"]["train"] == {**b["train"], "epochs": 1, "replays": 3}
    assert jobs["models"]["source_ce_seed0"]["architecture"] == "small_cnn"


def test_config_problems_name_the_key():
    bad = block()
    bad["schemes"] = {**bad["schemes"], "rrm": {"objective": "rrm", "params": {"lam": 1.0}, "teacher": "nope"},
                      "x": {"objective": "ce", "teacher": "pgd_at"}}  # fmt: skip
    bad["target"] = {**bad["target"], "classes": ["6", "seven"]}
    bad["evaluation"] = {**bad["evaluation"], "apgd": {"n_iter": 5, "eps": [0.25]}}
    keys = [k for k, _ in robustness.config_problems(bad, {})]
    assert "evaluation.apgd.eps" in keys
    assert "schemes.rrm.teacher" in keys and "schemes.x.teacher" in keys
    assert "target.classes" in keys
    assert robustness.config_problems(block(), {}) == []


CONFIG = configuration.validate(configuration.load([configuration.ROOT / "config.yaml"]))


def declared(eps=0.1):
    return C.declarations(CONFIG["claims"]["robustness"], {cid: {"primary": {"eps": eps}} for cid in
                                                           ("robustness_transfers", "retraining_minor", "rrm_robust")})


def test_claims_problems_name_an_eps_the_block_does_not_attack_at():
    assert family.claims_problems(block(), declared(0.1), CONFIG) == []
    problems = dict(family.claims_problems(block(), declared(0.3), CONFIG))
    assert "robustness_transfers.primary.eps" in problems and "[0.1, 0.2]" in problems["rrm_robust.primary.eps"]


def test_retrained_names_round_trip():
    names = robustness.retrained_names(block())
    assert len(names) == 3 * 2 * 3
    assert robustness.split_retrained("pgd_at_seed1_adv_finetune") == ("pgd_at_seed1", "adv_finetune")
    assert robustness.split_retrained("ce_seed0_finetune") == ("ce_seed0", "finetune")
    assert robustness.split_retrained("fine_tune_seed0_probe") == ("fine_tune_seed0", "probe")
    with pytest.raises(ValueError, match="retraining scheme"):
        robustness.split_retrained("ce_seed0")


def test_probe_as_linear_gives_the_probe_logits():
    from advtransfer.probe import fit_linear_probe

    g = torch.Generator().manual_seed(0)
    f = 3 * torch.randn(40, 5, generator=g, dtype=torch.float64) + 2
    probe = fit_linear_probe(f, torch.arange(40) % 3, l2=0.01, max_iter=50)
    weight, bias = probe.as_linear()  # a head on RAW features: the retrained model's
    torch.testing.assert_close(f.float() @ weight.T + bias, probe.predict_logits(f).float(), rtol=1e-5, atol=1e-5)


def frame(values, schemes=("a", "b"), retrains=("probe", "finetune"), seeds=(0, 1)):
    """A robustness summary whose target column holds ``values[(scheme, retrain)]`` (+ a seed offset)."""
    rows = [{"scheme": s, "retrain": r, "seed": k, "t": values[(s, r)] + 0.01 * k}
            for s in schemes for r in retrains for k in seeds]  # fmt: skip
    return pd.DataFrame(rows)


def test_retrain_effect_ratio_by_hand():
    f = frame({("a", "probe"): 0.2, ("a", "finetune"): 0.3, ("b", "probe"): 0.6, ("b", "finetune"): 0.7})
    # retraining means 0.405, 0.505 (SD 0.0707); scheme means 0.255, 0.655 (SD 0.283): ratio 0.25
    assert family.effect_ratio(f, "t") == pytest.approx(0.25)
    g = frame({("a", "probe"): 0.2, ("a", "finetune"): 0.6, ("b", "probe"): 0.2, ("b", "finetune"): 0.6})
    assert math.isnan(family.effect_ratio(g, "t"))  # the schemes do not differ at all
    assert family.scheme_ratio(f, "t", "a", "b") == pytest.approx(0.255 / 0.655)


SCHEMES = ("ce", "noise", "fast_at", "pgd_at", "rrm")
PROTOCOL = {**CONFIG["reproduction"], "n_perm": 999}


def judged(s):
    out = family.claims("x", block(schemes={k: {"objective": k} for k in SCHEMES}), {"summary": s}, declared(),
                        PROTOCOL)  # fmt: skip
    return out["claims"][out["claims"]["role"] == "primary"].set_index("claim_id")


def summary6(source_robust, target_robust, cpu, seeds=6):
    """:func:`summary` with six seeds: enough for the sign-flip claims to reach their level."""
    rows = []
    for scheme in source_robust:
        for k in range(seeds):
            for j, retrain in enumerate(robustness.RETRAIN_SCHEMES):
                rows.append({
                    "scheme": scheme, "seed": k, "retrain": retrain,
                    "source_pgd_accuracy_eps0.1": source_robust[scheme] + 0.002 * k,
                    "target_pgd_accuracy_eps0.1": target_robust[scheme] + 0.003 * k + 0.001 * j * (k % 2 - 0.5),
                    "train_cpu_seconds": cpu[scheme] * (1 + 0.01 * k),
                })  # fmt: skip
    return pd.DataFrame(rows)


def test_claims_reproduced_when_the_data_say_so():
    rows = judged(summary6({"ce": 0.05, "noise": 0.3, "fast_at": 0.5, "pgd_at": 0.7, "rrm": 0.6},
                           {"ce": 0.1, "noise": 0.2, "fast_at": 0.4, "pgd_at": 0.6, "rrm": 0.5},
                           {"ce": 10, "noise": 11, "fast_at": 20, "pgd_at": 60, "rrm": 12}))  # fmt: skip
    assert set(rows.index) == {"robustness_transfers", "retraining_minor", "rrm_robust", "rrm_cheaper"}
    assert rows.loc["robustness_transfers", "value"] == pytest.approx(1.0)
    assert rows.loc["robustness_transfers", "verdict"] == "reproduced"
    assert rows.loc["retraining_minor", "verdict"] == "reproduced" and rows.loc["retraining_minor", "value"] < 0.1
    assert rows.loc["rrm_robust", "value"] == pytest.approx(0.6 / 0.7, rel=0.01)
    assert rows.loc["rrm_robust", "verdict"] == "reproduced" and rows.loc["rrm_cheaper", "verdict"] == "reproduced"


def test_claims_not_reproduced_when_the_data_say_otherwise():
    rows = judged(summary6({"ce": 0.05, "noise": 0.3, "fast_at": 0.5, "pgd_at": 0.7, "rrm": 0.2},
                           {"ce": 0.6, "noise": 0.5, "fast_at": 0.4, "pgd_at": 0.1, "rrm": 0.5},
                           {"ce": 10, "noise": 11, "fast_at": 20, "pgd_at": 60, "rrm": 50}))  # fmt: skip
    assert rows.loc["robustness_transfers", "verdict"] == "not reproduced"
    assert rows.loc["rrm_robust", "verdict"] == "not reproduced"
    assert rows.loc["rrm_cheaper", "verdict"] == "not reproduced"


def test_two_seeds_or_three_schemes_are_underpowered_and_say_what_is_needed():
    rows = judged(summary6({"ce": 0.05, "pgd_at": 0.7, "rrm": 0.6}, {"ce": 0.1, "pgd_at": 0.6, "rrm": 0.5},
                           {"ce": 10, "pgd_at": 60, "rrm": 12}, seeds=2))  # fmt: skip
    assert set(rows["verdict"]) == {"underpowered"}
    assert "needs at least 5 units" in rows.loc["robustness_transfers", "note"]
    assert "needs at least 6 seeds" in rows.loc["rrm_robust", "note"]


def test_claims_inconclusive_when_the_schemes_do_not_differ_beyond_seed_noise():
    rows = judged(summary6({"ce": 0.5, "noise": 0.5, "fast_at": 0.5, "pgd_at": 0.5, "rrm": 0.5},
                           {"ce": 0.1, "noise": 0.2, "fast_at": 0.4, "pgd_at": 0.6, "rrm": 0.5},
                           {"ce": 10, "noise": 11, "fast_at": 20, "pgd_at": 60, "rrm": 12}))  # fmt: skip
    assert rows.loc["robustness_transfers", "verdict"] == "inconclusive"
    assert rows.loc["robustness_transfers", "design"].endswith("failed")


def test_robustness_of_a_trained_model_is_consistent():
    from sklearn.datasets import load_digits

    from advtransfer.train import TrainContext, TrainSettings, train_classifier

    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target)
    torch.manual_seed(0)
    model = SmallCNN(10, in_channels=1, image_size=8, width=8, hidden=32)
    train_classifier(model, x[:1200], y[:1200], x[1200:1300], y[1200:1300],
                     TrainSettings(epochs=4, batch_size=64, lr=0.1, momentum=0.9, weight_decay=0.0),
                     TrainContext(seed=0, device="cpu", progress=False))  # fmt: skip
    settings = {"pgd": {"eps": [0.05, 0.2], "steps": 10, "step_factor": 0.25}, "apgd": {"n_iter": 20},
                  "autoattack": False, "smoothing": {"sigma": 0.25, "n0": 20, "n": 200, "alpha": 0.001,
                  "radii": [0.0, 0.2, 0.5], "n_images": 50, "batch_size": 1000}}  # fmt: skip
    out = evaluation.robustness_of(model.eval(), x[1300:1500], y[1300:1500], settings, seed=0, device="cpu")
    assert out["clean_accuracy"] > 0.85
    # stronger attacks and larger eps can only lower the accuracy (up to APGD's own randomness: small slack)
    assert out["clean_accuracy"] >= out["pgd_accuracy_eps0.05"] >= out["pgd_accuracy_eps0.2"]
    assert out["apgd_accuracy_eps0.2"] <= out["pgd_accuracy_eps0.2"] + 0.02
    certified = [out[f"certified_accuracy_r{r:g}"] for r in (0.0, 0.2, 0.5)]
    assert certified == sorted(certified, reverse=True) and certified[-1] == 0.0  # 0.5 > the largest radius n allows
    assert 0 <= out["abstain_rate"] <= 1 and out["smoothed_accuracy"] <= 1 - out["abstain_rate"] + 1e-12
    again = evaluation.robustness_of(model.eval(), x[1300:1500], y[1300:1500], settings, seed=0, device="cpu")
    assert again == out  # seeded
    settings["apgd"]["eps"] = [0.2]  # APGD at the listed eps only
    only = evaluation.robustness_of(model.eval(), x[1300:1500], y[1300:1500], settings, seed=0, device="cpu")
    assert "apgd_accuracy_eps0.05" not in only and only == {
        k: v for k, v in out.items() if k != "apgd_accuracy_eps0.05"
    }


def robustness_jobs(schemes: int, seeds: int, datasets: int) -> dict[str, int]:
    """A block's jobs: one split for all sources and one for the target, one source per scheme and seed plus
    the reference, three retrainings per source, a
    robustness evaluation per source (source task) and per retrained model (target task)."""
    sources = schemes * seeds
    return {
        "dataset": datasets, "split": 2, "train": sources + 1, "attack": sources, "metrics": sources,
        "retrain": 3 * sources, "robust_eval": 4 * sources, "robustness_summary": 1, "robustness_figure": 1,
        "claims": 1, "reproduction": 1, "all": 1,
    }  # fmt: skip


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("experiment", "schemes", "seeds", "datasets"),
    [("digits_robustness", 5, 2, 1), ("fashion_robustness", 10, 6, 1), ("cifar100_cifar10", 10, 3, 2)],
)
def test_dry_run_builds_the_robustness_dags(experiment, schemes, seeds, datasets):
    from tests.test_scenarios import _gpu_by_rule
    from tests.test_workflow import job_counts

    out = snakemake(REPO, "-n", "--forceall", "--quiet", "rules", "--config", f"experiments=[{experiment}]").stdout
    assert job_counts(out) == robustness_jobs(schemes, seeds, datasets)
    if experiment == "cifar100_cifar10":  # the GPU block: `classes: all` is every class; GPU jobs ask for one
        cfg = yaml.safe_load((REPO / "config.yaml").read_text())["robustness"][experiment]
        assert cfg["source"]["classes"] == cfg["target"]["classes"] == "all"
        robustness.normalise(cfg, {})
        assert cfg["source"]["classes"][:2] == ["apple", "aquarium_fish"] and len(cfg["target"]["classes"]) == 10
        assert {len(m["classes"]) for m in robustness.network_jobs("x", cfg, {})["models"].values()} == {100, 10}
        gpus = _gpu_by_rule(snakemake(REPO, "-n", "--forceall", "--config", f"experiments=[{experiment}]",
                                      "device=cuda").stdout)  # fmt: skip
        assert all(gpus[rule] == {1} for rule in ("train", "retrain", "robust_eval", "attack", "metrics")), gpus


@pytest.mark.workflow
def test_bad_robustness_block_stops_before_any_job_naming_the_key(tmp_path):
    work = copy_workflow(tmp_path)
    cfg = yaml.safe_load((work / "config.yaml").read_text())
    cfg["robustness"]["digits_robustness"]["schemes"]["rrm"]["teacher"] = "madry"
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, "-n", "--config", "experiments=[digits_robustness]", check=False)
    assert proc.returncode != 0
    assert "robustness.digits_robustness.schemes.rrm.teacher" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def tiny_robustness(tiny_run):
    return tiny_run / "results" / "tinyrobustness"


@pytest.mark.workflow
def test_tiny_robustness_run_produces_every_output(tiny_robustness, tiny_run):
    out = tiny_robustness
    for name in ("robustness.csv", "claims.csv", "table.md", "table.tex", "robustness.png", "robustness.pdf"):
        assert (out / name).stat().st_size > 0, name
    s = pd.read_csv(out / "robustness.csv")
    assert len(s) == 3 * 2 * 3 and set(s["retrain"]) == set(robustness.RETRAIN_SCHEMES)
    for column in ("source_clean_accuracy", "source_pgd_accuracy_eps0.1", "source_apgd_accuracy_eps0.2",
                   "source_certified_accuracy_r0.1", "target_pgd_accuracy_eps0.2", "target_certified_accuracy_r0",
                   "train_cpu_seconds", "tau1", "tau2", "alpha", "cross_adv_loss"):  # fmt: skip
        assert column in s.columns and s[column].notna().all(), column
    accuracy = s.filter(like="_accuracy")
    assert ((accuracy >= 0) & (accuracy <= 1)).all().all()
    assert (s["source_clean_accuracy"] >= s["source_pgd_accuracy_eps0.1"]).all()
    # the probe keeps the body: the same source gives the same tau whatever the retraining
    assert (s.groupby(["scheme", "seed"])["tau1"].nunique() == 1).all()
    teacher = (out / "models" / "source_rrm_seed0.json").read_text()
    assert "source_pgd_at_seed0" in teacher
    claims = pd.read_csv(tiny_run / "results" / "reproduction.csv", keep_default_na=False)
    mine = claims[claims["experiment"] == "tinyrobustness"]
    assert {"retraining_minor", "rrm_robust", "rrm_cheaper", "robustness_transfers"} <= set(mine["claim_id"])
    assert set(mine["verdict"]) <= set(C.VERDICTS)
    values = pd.to_numeric(mine["value"], errors="coerce")  # NaN where undefined (e.g. a constant outcome) ...
    assert (np.isfinite(values) | mine["verdict"].isin(["inconclusive", "underpowered"])).all()  # ... no verdict
    assert np.isfinite(values[mine["claim_id"] == "retraining_minor"]).all()
    # 3 schemes x 2 seeds: every primary view is underpowered, and says what would not be
    assert set(mine[mine["role"] == "primary"]["verdict"]) == {"underpowered"}
