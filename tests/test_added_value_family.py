"""The added-value family and the crossed design it analyses: per-source factors (domain, label noise, budget,
width) and paired references in the shared network jobs, label noise in the splits, the family's config checks,
its claims (with their calibration under the design's confound) and the tiny end-to-end run."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from advtransfer import claims as C
from advtransfer import data
from advtransfer.calibration import calibrate
from advtransfer.designs import transfer_jobs
from advtransfer.families.added_value import claims as ac
from advtransfer.families.added_value import jobs as aj
from advtransfer.families.scenarios import jobs as sj
from advtransfer.models import build_model
from tests.workflow_helpers import REPO

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
TINY = yaml.safe_load((REPO / "tests/configs/tiny_added_value.yaml").read_text())


def _scenario(sources, **extra):
    s = copy.deepcopy(yaml.safe_load((REPO / "tests/configs/tiny_digits.yaml").read_text())["scenarios"]["tinydigits"])
    s.update(objective="ce", sources=sources, **extra)
    return s


# --------------------------------------------------------------------------------------------- label noise


def test_flip_labels_flips_exactly_the_share_to_other_classes_deterministically():
    labels = torch.arange(200) % 4
    flipped = data.flip_labels(labels, 0.4, 4, seed=7)
    changed = flipped != labels
    assert int(changed.sum()) == 80  # every chosen label moves to ANOTHER class
    assert torch.equal(flipped, data.flip_labels(labels, 0.4, 4, seed=7))
    assert not torch.equal(flipped, data.flip_labels(labels, 0.4, 4, seed=8))
    assert set(flipped.tolist()) <= {0, 1, 2, 3}
    assert torch.equal(data.flip_labels(labels, 0.0, 4, seed=7), labels)
    # the other classes are drawn uniformly: each of the 3 gets about a third of the flips
    moved = (flipped[changed] - labels[changed]) % 4
    assert min(int((moved == k).sum()) for k in (1, 2, 3)) > 10
    with pytest.raises(ValueError, match="fraction"):
        data.flip_labels(labels, 1.5, 4, seed=0)


def test_narrow_small_cnn_is_a_registry_model_with_a_quarter_of_the_width():
    torch.manual_seed(0)
    narrow = build_model("small_cnn_narrow", num_classes=3, in_channels=1, image_size=8)
    wide = build_model("small_cnn", num_classes=3, in_channels=1, image_size=8)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert narrow.feature_dim == wide.feature_dim == 128 and count(narrow) < count(wide) / 3
    assert narrow(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


# ------------------------------------------------------------------------------------ the network jobs


def test_a_source_without_overrides_gets_exactly_the_jobs_it_had_before():
    plain = transfer_jobs(_scenario({}), {"a": ("digits", ["0", "1"])})
    same = transfer_jobs(_scenario({}), {"a": ("digits", ["0", "1"], {})})
    assert plain == same
    assert set(plain["models"]) == {"source_a_seed0", "source_a_seed1", "reference"}
    assert "label_noise" not in plain["splits"]["source_a"]  # no new key: existing results stay up to date


def test_source_overrides_and_paired_references_reach_their_jobs():
    s = _scenario({}, paired_reference=True)
    over = {"domain": "invert", "label_noise": 0.3, "max_train_per_class": 10, "model": "small_cnn_narrow",
            "train": {"epochs": 1}}  # fmt: skip
    jobs = transfer_jobs(s, {"a": ("digits", ["0", "1"]), "b": ("digits", ["0", "1"], over)})
    split_b, split_a = jobs["splits"]["source_b"], jobs["splits"]["source_a"]
    assert split_b["label_noise"] == 0.3 and split_b["max_train_per_class"] == 10
    assert split_a["max_train_per_class"] == 30
    model = jobs["models"]["source_b_seed1"]
    assert model["domain"] == "invert" and model["architecture"] == "small_cnn_narrow"
    assert model["train"] == {**s["train"], "epochs": 1} and jobs["models"]["source_a_seed1"]["train"] == s["train"]
    assert {n for n in jobs["models"] if n.startswith("reference")} == {"reference_seed0", "reference_seed1"}
    assert jobs["models"]["reference_seed1"]["seed"] == 1
    assert jobs["evaluations"]["b_seed1"]["reference"] == "reference_seed1"
    assert jobs["evaluations"]["a_seed0"]["reference"] == "reference_seed0"
    with pytest.raises(ValueError, match="unknown source overrides"):
        transfer_jobs(s, {"a": ("digits", ["0"], {"width": 8})})


def test_scenario_sources_may_be_mappings_and_their_domains_are_checked():
    block = _scenario({"a": ["0", "1"], "b": {"classes": ["0", "1"], "domain": "sepia"}})
    problems = dict(sj.config_problems(block, {}))
    assert "sources.b.domain" in problems and "sepia" in problems["sources.b.domain"]
    assert sj.source_spec({"classes": ["1"], "domain": "blur"}) == (["1"], {"domain": "blur"})
    assert sj.source_spec(["1", "2"]) == (["1", "2"], {})


# --------------------------------------------------------------------------------------------- the family


def test_source_factors_of_the_default_crossed_design():
    factors = aj.source_factors(CONFIG["scenarios"]["digits_crossed"])
    assert len(factors) == 12
    levels = pd.Series({s: f["overlap"] for s, f in factors.items()})
    assert levels.value_counts().to_dict() == {1.0: 4, 0.75: 4, 0.5: 4}  # >= 4 sources in each of 3 levels
    assert factors["in3invert"] == {"overlap": 0.75, "domain": "invert", "label_noise": 0.0,
                                    "max_train_per_class": None, "epochs": 30, "model": "small_cnn"}  # fmt: skip
    assert factors["in2noisy"]["label_noise"] == 0.4 and factors["in4few"]["max_train_per_class"] == 15
    full = aj.source_factors(CONFIG["scenarios"]["fashion_crossed"])
    assert full["in2narrow"]["model"] == "small_cnn_narrow"
    assert len(CONFIG["scenarios"]["fashion_crossed"]["seeds"]) >= 5


def test_config_problems_name_what_is_wrong_with_a_block():
    config = copy.deepcopy(TINY)
    block = {"selection": "tinycrossedsel", "known": ["overlap", "seed"], "outcome": "probe_accuracy_k2"}
    assert aj.config_problems(block, config) == []
    assert aj.config_problems({**block, "selection": "nope"}, config)[0][0] == "selection"
    assert "width" in dict(aj.config_problems({**block, "known": ["overlap", "width"]}, config))["known"]
    assert "knowledge outcome" in dict(aj.config_problems({**block, "outcome": "k7"}, config))["outcome"]
    config["scenarios"]["tinycrossed"]["sources"] = {"a": ["0", "1"], "b": ["5", "1"]}
    assert "not a crossed design" in dict(aj.config_problems(block, config))["selection"]
    config["model_selection"]["tinycrossedsel"]["scenario_sources"] = False
    assert "scenario_sources" in dict(aj.config_problems(block, config))["selection"]


def test_claims_problems_name_an_unknown_score():
    declared = {"tau_within_level": {"primary": {"score": "tau3", "against": "outcome"}, "direction": "increasing",
                                     "secondary": [{"score": "logme"}]}}  # fmt: skip
    problems = ac.claims_problems({}, declared, {})
    assert [k for k, _ in problems] == ["tau_within_level.primary.score"]


def test_within_level_design_check_needs_every_level():
    rng = np.random.default_rng(0)
    rows = [dict(source=f"s{u}", seed=k, overlap=u // 3, y=(u % 3) * (u // 3) + 0.01 * rng.normal())
            for u in range(6) for k in range(3)]  # level 0: identical sources; level 1: well separated
    design = ac.within_level_design(pd.DataFrame(rows), "y", 5.0)
    assert not design.passed and "at overlap 0 / 1" in design.text and design.text.endswith("failed")
    rows = [{**r, "y": r["y"] + (r["source"] in ("s1", "s2")) * int(r["source"][1])} for r in rows]
    assert ac.within_level_design(pd.DataFrame(rows), "y", 5.0).passed


def test_the_claims_keep_their_level_under_the_overlap_confound():
    """The calibration of the family's claims in the default quick design's shape: the overlap drives score
    and outcome alike, and the within-level tests must not fire on it (their false-positive rate at most the
    level plus Monte-Carlo error), while a within-level signal is found."""
    declared = C.declarations(CONFIG["claims"]["added_value"], None)
    designs = ac.claim_designs("digits_added_value", CONFIG["added_value"]["digits_added_value"], declared, CONFIG)
    assert {d.kind for d in designs} == {"within_level", "within_level_gain", "sign"}
    designs = [d.__class__(**{**d.__dict__, "family": "advtransfer.families.added_value.claims"}) for d in designs
               if d.kind != "sign"]  # fmt: skip
    settings = {"n_perm": 199, "perm_seed": 0, "n_boot": 100, "level": 0.95, "alpha": 0.05}
    table = calibrate(designs, reps=120, settings=settings, seed=1)
    assert (table["false_positive_rate"] <= 0.025 + 3 * table["mc_se"]).all(), table.to_string()
    power = table.groupby("claim")["power"].first()  # measured: 0.83 within levels, 0.43 for the product's gain
    assert power["tau_within_level"] > 0.6 and power["tau1_not_sufficient"] > 0.25, table.to_string()


# ---------------------------------------------------------------------------------------------- tiny run


@pytest.mark.workflow
def test_tiny_added_value_run(tiny_run):
    out = tiny_run / "results" / "tinyadded"
    for name in aj.OUTPUTS + ("claims.csv",):
        assert (out / name).stat().st_size > 0, name
    sources = pd.read_csv(out / "sources.csv")
    assert len(sources) == 8 and set(sources["overlap"]) == {1.0, 0.5}
    shift = sources[sources["source"] == "in2shift"].iloc[0]
    assert shift["domain"] == "invert" and shift["label_noise"] == 0.3
    assert sources.loc[sources["source"] == "in1small", "model"].eq("small_cnn_narrow").all()
    table = pd.read_csv(out / "added_value.csv")
    assert list(table.columns) == av_columns()
    outcomes = ["probe_accuracy_k2", "probe_accuracy", "finetune_accuracy"]
    assert len(table) == 21 * len(outcomes) and set(table["outcome"]) == set(outcomes)
    assert table["n_sources"].eq(4).all() and table["n_seeds"].eq(2).all()
    claims = pd.read_csv(out / "claims.csv")
    assert set(claims["claim_id"]) == {"tau_within_level", "tau1_not_sufficient", "estimator_adds_more"}
    assert claims["verdict"].isin(C.VERDICTS).all()
    # what each source changes reached its jobs: its split's labels, its model's architecture and training
    crossed = tiny_run / "results" / "tinycrossed"
    from advtransfer.io import load_json, load_tensors

    plain, noisy = (load_tensors(crossed / "splits" / f"source_{s}.safetensors") for s in ("in2plain", "in2shift"))
    assert torch.equal(plain["train_idx"], noisy["train_idx"])
    assert int((plain["train_y"] != noisy["train_y"]).sum()) == round(0.3 * len(plain["train_y"]))
    small = load_json(crossed / "models" / "source_in1small_seed1.json")
    assert small["architecture"]["name"] == "small_cnn_narrow" and small["train"]["epochs"] == 1
    assert load_json(crossed / "models" / "source_in2shift_seed0.json")["domain"] == "invert"
    assert {load_json(crossed / "models" / f"reference_seed{k}.json")["seed"] for k in (0, 1)} == {0, 1}


def av_columns():
    from advtransfer.added_value import COLUMNS

    return COLUMNS
