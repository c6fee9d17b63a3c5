# Data-distribution scenarios (Section 4.2, Figure 3): each scenario's config block becomes its network
# jobs (sources per class mixture and seed, one reference, one evaluation per source and seed), then its
# summary (every source and seed, rank correlations), tables and Figure 3.


def scenario_networks(name, s):
    """The normalised network jobs (rules/common.smk) of scenario ``name`` from its config block ``s``."""
    split, target = s["split"], s["target"]
    same = names.canonical_dataset(s["source_dataset"]) == names.canonical_dataset(
        target["dataset"]
    )

    def pool(side, partner):
        if not same:
            return None
        return {
            "with": partner,
            "side": side,
            "fraction": split["source_pool_fraction"],
            "seed": split["seed"],
        }

    common = {
        "val_fraction": split["val_fraction"],
        "max_train_per_class": split["max_train_per_class"],
        "seed": split["seed"],
    }
    splits = {
        f"source_{src}": {
            "dataset": s["source_dataset"],
            "classes": classes,
            "pool": pool("source", target["dataset"]),
            "test": False,
            "max_test_per_class": None,
            **common,
        }
        for src, classes in s["sources"].items()
    }
    splits["target"] = {
        "dataset": target["dataset"],
        "classes": target["classes"],
        "pool": pool("target", s["source_dataset"]),
        "test": True,
        "max_test_per_class": split["max_test_per_class"],
        **common,
    }
    network = {
        "architecture": names.model_spec(s["model"]),
        "image_size": s["image_size"],
        "channels": s["channels"],
        "objective": s["objective"],
        "objective_params": {},
        "train": s["train"],
    }
    models = {
        f"source_{src}_seed{seed}": {
            "split": f"source_{src}",
            "dataset": s["source_dataset"],
            "classes": classes,
            "domain": "identity",
            "domain_seed": 0,
            "seed": seed,
            **network,
        }
        for src, classes in s["sources"].items()
        for seed in s["seeds"]
    }
    target_data = {**target, "domain_seed": split["seed"]}
    models["reference"] = {
        "split": "target",
        "dataset": target["dataset"],
        "classes": target["classes"],
        "domain": target["domain"],
        "domain_seed": split["seed"],
        "seed": s["reference_seed"],
        **network,
    }
    evaluations = {
        f"{src}_seed{seed}": {
            "source": f"source_{src}_seed{seed}",
            "reference": "reference",
            "split": "target",
            "target": target_data,
            "image_size": s["image_size"],
            "channels": s["channels"],
            "seed": seed,
            "attack": s["attack"],
            "metrics": s["metrics"],
            "probe": s["probe"],
        }
        for src in s["sources"]
        for seed in s["seeds"]
    }
    return {
        "datasets": sorted({s["source_dataset"], target["dataset"]}),
        "splits": splits,
        "models": models,
        "evaluations": evaluations,
    }


for _name, _scenario in SCENARIOS.items():
    add_networks(_name, scenario_networks(_name, _scenario))


def scenario_rows(wildcards):
    """(source, seed) of each evaluation of a scenario, in the order of the summary's inputs."""
    s = SCENARIOS[wildcards.scenario]
    return [{"source": src, "seed": seed} for src in s["sources"] for seed in s["seeds"]]


def scenario_files(pattern):
    """Input function: ``pattern`` ({scenario}, {source}, {seed}) over every source and seed."""

    def get(wildcards):
        return [
            pattern.format(scenario=wildcards.scenario, **row)
            for row in scenario_rows(wildcards)
        ]

    return get


def scenario_outputs(name):
    """The files rule `all` asks for of a scenario."""
    files = ["summary.csv", "correlations.csv", "table.md", "table.tex", "figure3.png", "figure3.pdf"]
    return [f"results/{name}/{f}" for f in files]

rule scenario_summary:
    input:
        metrics=scenario_files("results/{scenario}/metrics/{source}_seed{seed}.json"),
        probes=scenario_files("results/{scenario}/probes/{source}_seed{seed}.json"),
        sources=scenario_files(
            "results/{scenario}/models/source_{source}_seed{seed}.json"
        ),
        reference="results/{scenario}/models/reference.json",
    output:
        summary=report(
            "results/{scenario}/summary.csv",
            caption="../report/summary.rst",
            category="Data distributions (Section 4.2)",
            subcategory="{scenario}",
        ),
        correlations=report(
            "results/{scenario}/correlations.csv",
            caption="../report/correlations.rst",
            category="Data distributions (Section 4.2)",
            subcategory="{scenario}",
        ),
        table_md="results/{scenario}/table.md",
        table_tex="results/{scenario}/table.tex",
    log:
        "results/{scenario}/logs/summary.log",
    benchmark:
        "results/{scenario}/benchmarks/summary.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        target_classes=lambda w: SCENARIOS[w.scenario]["target"]["classes"],
        rows=scenario_rows,
        n_boot=2000,
        code=code_hash("scripts/scenario_summary.py"),
    script:
        "../scripts/scenario_summary.py"


rule scenario_figure:
    input:
        summary="results/{scenario}/summary.csv",
        correlations="results/{scenario}/correlations.csv",
    output:
        png=report(
            "results/{scenario}/figure3.png",
            caption="../report/figure3.rst",
            category="Data distributions (Section 4.2)",
            subcategory="{scenario}",
        ),
        pdf="results/{scenario}/figure3.pdf",
    log:
        "results/{scenario}/logs/figure.log",
    benchmark:
        "results/{scenario}/benchmarks/figure.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        source_dataset=lambda w: SCENARIOS[w.scenario]["source_dataset"],
        target_dataset=lambda w: SCENARIOS[w.scenario]["target"]["dataset"],
        target_classes=lambda w: SCENARIOS[w.scenario]["target"]["classes"],
        code=code_hash("scripts/scenario_figure.py"),
    script:
        "../scripts/scenario_figure.py"
