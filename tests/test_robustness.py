"""The robustness family: its config -> jobs, its summary statistics and claims, its evaluation, and a tiny
end-to-end run."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from advtransfer import evaluation, reproduction, robustness
from advtransfer.models import SmallCNN
from tests.workflow_helpers import REPO, copy_workflow, snakemake

BLOCK = yaml.safe_load((REPO / "tests/configs/tiny_robustness.yaml").read_text())["robustness"]["tinyrobustness"]


def block(**changes):
    """The tiny block with the schema's defaults that the code reads filled in, and ``changes``."""
    b = {**BLOCK, "reference_seed": 0, "reference_train": None, "metrics": BLOCK["metrics"],
         "claims": {**BLOCK["claims"]}}  # fmt: skip
    b["target"] = {**b["target"]}
    b["split"] = {"source_pool_fraction": None, **b["split"]}
    b.update(changes)
    return b


def test_network_jobs_one_source_per_scheme_and_seed_with_its_objective_and_teacher():
    jobs = robustness.network_jobs(block())
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
    jobs = robustness.network_jobs(b)
    assert jobs["models"]["source_lip_seed0"]["architecture"] == "lipschitz_mlp"
    assert jobs["models"]["source_free_seed0"]["train"] == {**b["train"], "epochs": 1, "replays": 3}
    assert jobs["models"]["source_ce_seed0"]["architecture"] == "small_cnn"


def test_config_problems_name_the_key():
    bad = block()
    bad["schemes"] = {**bad["schemes"], "rrm": {"objective": "rrm", "params": {"lam": 1.0}, "teacher": "nope"},
                      "x": {"objective": "ce", "teacher": "pgd_at"}}  # fmt: skip
    bad["claims"] = {**bad["claims"], "robust": "madry", "eps": 0.3}
    bad["target"] = {**bad["target"], "classes": ["6", "seven"]}
    bad["evaluation"] = {**bad["evaluation"], "apgd": {"n_iter": 5, "eps": [0.25]}}
    keys = [k for k, _ in robustness.config_problems(bad)]
    assert "evaluation.apgd.eps" in keys
    assert "schemes.rrm.teacher" in keys and "schemes.x.teacher" in keys
    assert "claims.robust" in keys and "claims.eps" in keys and "target.classes" in keys
    assert robustness.config_problems(block()) == []


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
    assert robustness.retrain_effect_ratio(f, "t") == pytest.approx(0.25)
    g = frame({("a", "probe"): 0.2, ("a", "finetune"): 0.6, ("b", "probe"): 0.2, ("b", "finetune"): 0.6})
    assert math.isnan(robustness.retrain_effect_ratio(g, "t"))  # the schemes do not differ at all


def test_seed_bootstrap_resamples_whole_seeds():
    f = frame({("a", "probe"): 0.2, ("a", "finetune"): 0.3, ("b", "probe"): 0.6, ("b", "finetune"): 0.7})
    value, lo, hi = robustness.seed_bootstrap(f, lambda x: x["t"].mean(), n_boot=200, level=0.95, seed=0)
    assert value == pytest.approx(f["t"].mean())
    assert lo == pytest.approx(0.45) and hi == pytest.approx(0.46)  # all seed 0 / all seed 1 at the extremes
    one = f[f["seed"] == 0]
    assert all(math.isnan(v) for v in robustness.seed_bootstrap(one, lambda x: x["t"].mean(), 50, 0.95, 0)[1:])


def summary(source_robust, target_robust, cpu):
    """A robustness.csv with the columns the claims read: per scheme its source / target robust accuracy and
    its training CPU seconds, the same for 3 seeds up to small offsets, three retraining schemes."""
    rows = []
    for scheme in source_robust:
        for k in range(3):
            for j, retrain in enumerate(robustness.RETRAIN_SCHEMES):
                rows.append({
                    "scheme": scheme, "seed": k, "retrain": retrain, "source_clean_accuracy": 0.9,
                    "source_pgd_accuracy_eps0.1": source_robust[scheme] + 0.002 * k,
                    "target_pgd_accuracy_eps0.1": target_robust[scheme] + 0.003 * k + 0.001 * j,
                    "train_cpu_seconds": cpu[scheme] * (1 + 0.01 * k),
                })  # fmt: skip
    return pd.DataFrame(rows)


CRITERIA = {"n_boot": 300, "level": 0.95, "seed": 0, "min_correlation": 0.0, "min_separation": 5.0,
            "robustness": {"rrm_min_robust_ratio": 0.8, "rrm_max_time_ratio": 0.5}}  # fmt: skip
CLAIMS = {"eps": 0.1, "robust": "pgd_at", "standard": "ce", "rrm": "rrm", "fast": ["fast_at"]}


def test_claims_reproduced_when_the_data_say_so():
    s = summary({"ce": 0.05, "fast_at": 0.5, "pgd_at": 0.7, "rrm": 0.6},
                {"ce": 0.1, "fast_at": 0.4, "pgd_at": 0.6, "rrm": 0.5},
                {"ce": 10, "fast_at": 20, "pgd_at": 60, "rrm": 12})
    rows = {r["claim_id"]: r for r in reproduction.robustness_claims("x", s, CLAIMS, CRITERIA)}
    assert set(rows) == {"robustness_transfers_probe", "robustness_transfers_finetune",
                         "robustness_transfers_adv_finetune", "retraining_minor", "rrm_fraction_of_time"}
    assert rows["robustness_transfers_probe"]["value"] == pytest.approx(1.0)
    assert rows["robustness_transfers_probe"]["verdict"] == "reproduced"
    assert rows["retraining_minor"]["verdict"] == "reproduced" and rows["retraining_minor"]["value"] < 0.1
    assert rows["rrm_fraction_of_time"]["value"] == pytest.approx(0.6 / 0.7, rel=0.01)
    assert rows["rrm_fraction_of_time"]["verdict"] == "reproduced"


def test_claims_not_reproduced_when_the_data_say_otherwise():
    s = summary({"ce": 0.05, "fast_at": 0.5, "pgd_at": 0.7, "rrm": 0.2},
                {"ce": 0.6, "fast_at": 0.4, "pgd_at": 0.1, "rrm": 0.5},
                {"ce": 10, "fast_at": 20, "pgd_at": 60, "rrm": 50})
    rows = {r["claim_id"]: r for r in reproduction.robustness_claims("x", s, CLAIMS, CRITERIA)}
    assert rows["robustness_transfers_probe"]["verdict"] == "not reproduced"
    assert rows["rrm_fraction_of_time"]["verdict"] == "not reproduced"


def test_claims_inconclusive_when_the_schemes_do_not_differ_beyond_seed_noise():
    s = summary({"ce": 0.5, "fast_at": 0.5, "pgd_at": 0.5, "rrm": 0.5},
                {"ce": 0.1, "fast_at": 0.4, "pgd_at": 0.6, "rrm": 0.5},
                {"ce": 10, "fast_at": 20, "pgd_at": 60, "rrm": 12})
    rows = {r["claim_id"]: r for r in reproduction.robustness_claims("x", s, CLAIMS, CRITERIA)}
    assert rows["robustness_transfers_probe"]["verdict"] == "inconclusive"
    assert "design check" in rows["robustness_transfers_probe"]["note"]


def test_robustness_of_a_trained_model_is_consistent():
    from sklearn.datasets import load_digits

    from advtransfer.train import train_classifier

    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target)
    torch.manual_seed(0)
    model = SmallCNN(10, in_channels=1, image_size=8, width=8, hidden=32)
    train_classifier(model, x[:1200], y[:1200], x[1200:1300], y[1200:1300], epochs=4, batch_size=64, lr=0.1,
                     momentum=0.9, weight_decay=0.0, seed=0, device="cpu", progress=False)  # fmt: skip
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
        "reproduction": 1, "all": 1,
    }  # fmt: skip


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("experiment", "schemes", "seeds", "datasets"),
    [("digits_robustness", 3, 2, 1), ("fashion_robustness", 9, 3, 1), ("cifar100_cifar10", 9, 3, 2)],
)
def test_dry_run_builds_the_robustness_dags(experiment, schemes, seeds, datasets):
    from tests.test_scenarios import _gpu_by_rule
    from tests.test_workflow import job_counts

    out = snakemake(REPO, "-n", "--forceall", "--quiet", "rules", "--config", f"experiments=[{experiment}]").stdout
    assert job_counts(out) == robustness_jobs(schemes, seeds, datasets)
    if experiment == "cifar100_cifar10":  # the GPU block: `classes: all` is every class; GPU jobs ask for one
        cfg = yaml.safe_load((REPO / "config.yaml").read_text())["robustness"][experiment]
        assert cfg["source"]["classes"] == cfg["target"]["classes"] == "all"
        robustness.expand_all_classes(cfg)
        assert cfg["source"]["classes"][:2] == ["apple", "aquarium_fish"] and len(cfg["target"]["classes"]) == 10
        assert {len(m["classes"]) for m in robustness.network_jobs(cfg)["models"].values()} == {100, 10}
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
    assert {"retraining_minor", "rrm_fraction_of_time", "robustness_transfers_probe"} <= set(mine["claim_id"])
    assert set(mine["verdict"]) <= set(reproduction.VERDICTS)
    values = pd.to_numeric(mine["value"], errors="coerce")  # NaN where undefined (e.g. a constant outcome) ...
    assert (np.isfinite(values) | (mine["verdict"] == "inconclusive")).all()  # ... and then never a verdict
    assert np.isfinite(values[mine["claim_id"] == "retraining_minor"]).all()
