# Multi-order interactions (Ren et al., NeurIPS 2021) of a robustness block's models and, optionally, of a
# data-distribution scenario's sources (advtransfer/families/interactions/jobs.py: the job names; advtransfer/interactions.py:
# the estimator and the summaries): one profile job per model, then the summary (interactions.csv, tables)
# and the figure; the shared claims rule (rules/reproduction.smk) judges the claims. The models come from their own experiments' rules (robustness, scenarios).
from advtransfer.families.interactions import claims as interactions_family
from advtransfer.families.interactions import jobs as interaction_jobs

INTERACTIONS = BLOCKS["interactions"]


rule interactions:
    input:
        unpack(
            lambda w: interaction_jobs.profile_inputs(
                INTERACTIONS[w.interactions], config, NETWORKS, w.name
            )
        ),
    output:
        "results/{interactions}/profiles/{name}.csv",
    log:
        "results/{interactions}/logs/profile_{name}.log",
    benchmark:
        "results/{interactions}/benchmarks/profile_{name}.tsv"
    wildcard_constraints:
        name=r"(source|target|scenario)_\w+",
    retries: 1
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=gpu_request(),
    params:
        root=config["data"]["root"],
        data=lambda w: interaction_jobs.profile_data(
            INTERACTIONS[w.interactions], config, NETWORKS, w.name
        ),
        settings=lambda w: interaction_jobs.profile_settings(
            INTERACTIONS[w.interactions]
        ),
        device=config["device"],
        code=code_hash("scripts/interactions.py"),
    script:
        "../scripts/interactions.py"


rule interactions_summary:
    input:
        profiles=lambda w: expand(
            "results/{interactions}/profiles/{name}.csv",
            interactions=w.interactions,
            name=interaction_jobs.job_names(
                INTERACTIONS[w.interactions], config, NETWORKS
            ),
        ),
        scenario=lambda w: (
            [f"results/{INTERACTIONS[w.interactions]['scenario']}/summary.csv"]
            if INTERACTIONS[w.interactions]["scenario"]
            else []
        ),
    output:
        summary=report(
            "results/{interactions}/interactions.csv",
            caption="../report/interactions/interactions.rst",
            category="Multi-order interactions",
            subcategory="{interactions}",
        ),
        profiles="results/{interactions}/profiles.csv",
        view="results/{interactions}/orders_vs_tau.csv",
        table_md="results/{interactions}/table.md",
        table_tex="results/{interactions}/table.tex",
    log:
        "results/{interactions}/logs/summary.log",
    benchmark:
        "results/{interactions}/benchmarks/summary.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        names=lambda w: interaction_jobs.job_names(
            INTERACTIONS[w.interactions], config, NETWORKS
        ),
        seeds=lambda w: config["robustness"][
            INTERACTIONS[w.interactions]["robustness"]
        ]["seeds"],
        claims=lambda w: interactions_family.compared(declared_claims(w.interactions)),
        outcome=lambda w: (
            config["scenarios"][INTERACTIONS[w.interactions]["scenario"]]["outcome"]
            if INTERACTIONS[w.interactions]["scenario"]
            else None
        ),
        reproduction={k: config["reproduction"][k] for k in ("n_boot", "level", "seed")},
        code=code_hash("scripts/interactions_summary.py"),
    script:
        "../scripts/interactions_summary.py"


rule interactions_figure:
    input:
        summary="results/{interactions}/interactions.csv",
        view="results/{interactions}/orders_vs_tau.csv",
    output:
        png=report(
            "results/{interactions}/interactions.png",
            caption="../report/interactions/figure.rst",
            category="Multi-order interactions",
            subcategory="{interactions}",
        ),
        pdf="results/{interactions}/interactions.pdf",
    log:
        "results/{interactions}/logs/figure.log",
    benchmark:
        "results/{interactions}/benchmarks/figure.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        claims=lambda w: interactions_family.compared(declared_claims(w.interactions)),
        outcome=lambda w: (
            config["scenarios"][INTERACTIONS[w.interactions]["scenario"]]["outcome"]
            if INTERACTIONS[w.interactions]["scenario"]
            else None
        ),
        level=config["reproduction"]["level"],
        title=lambda w: w.interactions,
        code=code_hash("scripts/interactions_figure.py"),
    script:
        "../scripts/interactions_figure.py"
