# Model selection: which source model should I transfer? (advtransfer/families/model_selection/jobs.py: candidates and config
# checks; advtransfer/selection.py: scores, agreement, costs; advtransfer/estimators.py: the estimators.) The
# candidates, a scenario's sources and / or a zoo of registry models, are all scored on the scenario's target
# task: one estimators job per candidate; the zoo's tau metrics, probes and fine-tuning come from the generic
# network rules (its evaluations against the scenario's reference); then the summary (scores.csv, agreement.csv,
# tables) and the figures; the shared claims rule (rules/reproduction.smk) judges the claims.
from advtransfer.families.model_selection import jobs as selection_jobs

SELECTION = BLOCKS["model_selection"]


wildcard_constraints:
    candidate=r"\w+",


rule selection_zoo:
    input:
        weights=lambda w: (
            [selection_jobs.zoo_entry(SELECTION[w.selection], w.name)["weights"]]
            if selection_jobs.zoo_entry(SELECTION[w.selection], w.name).get("weights")
            else []
        ),
    output:
        model="results/{selection}/zoo/{name}.safetensors",
        info="results/{selection}/zoo/{name}.json",
    log:
        "results/{selection}/logs/zoo_{name}.log",
    benchmark:
        "results/{selection}/benchmarks/zoo_{name}.tsv"
    wildcard_constraints:
        name=r"\w+",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        entry=lambda w: selection_jobs.zoo_entry(SELECTION[w.selection], w.name),
        where=lambda w: f"model_selection.{w.selection}.zoo ({w.name})",
        channels=lambda w: selection_jobs.target(
            SELECTION[w.selection], NETWORKS, "channels"
        ),
        image_size=lambda w: selection_jobs.target(
            SELECTION[w.selection], NETWORKS, "image_size"
        ),
        code=code_hash("scripts/selection_zoo.py"),
        factory=lambda w: import_path_hash(
            selection_jobs.zoo_entry(SELECTION[w.selection], w.name)["model"]
        ),
    script:
        "../scripts/selection_zoo.py"


rule selection_scores:
    input:
        unpack(
            lambda w: selection_jobs.scores_inputs(
                SELECTION[w.selection], NETWORKS, w.selection, w.candidate
            )
        ),
    output:
        "results/{selection}/scores/{candidate}.json",
    log:
        "results/{selection}/logs/scores_{candidate}.log",
    benchmark:
        "results/{selection}/benchmarks/scores_{candidate}.tsv"
    retries: 1
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=gpu_request(),
    params:
        root=config["data"]["root"],
        target=lambda w: selection_jobs.target(
            SELECTION[w.selection], NETWORKS, "target"
        ),
        image_size=lambda w: selection_jobs.target(
            SELECTION[w.selection], NETWORKS, "image_size"
        ),
        channels=lambda w: selection_jobs.target(
            SELECTION[w.selection], NETWORKS, "channels"
        ),
        settings=lambda w: SELECTION[w.selection]["estimators"],
        device=config["device"],
        code=code_hash("scripts/selection_scores.py"),
    script:
        "../scripts/selection_scores.py"


rule selection_summary:
    input:
        unpack(
            lambda w: selection_jobs.summary_inputs(
                SELECTION[w.selection], NETWORKS, w.selection
            )
        ),
    output:
        scores=report(
            "results/{selection}/scores.csv",
            caption="../report/model_selection/scores_table.rst",
            category="Model selection",
            subcategory="{selection}",
        ),
        agreement=report(
            "results/{selection}/agreement.csv",
            caption="../report/model_selection/agreement_table.rst",
            category="Model selection",
            subcategory="{selection}",
        ),
        table_md="results/{selection}/table.md",
        table_tex="results/{selection}/table.tex",
    log:
        "results/{selection}/logs/summary.log",
    benchmark:
        "results/{selection}/benchmarks/summary.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        candidates=lambda w: selection_jobs.candidates(SELECTION[w.selection], NETWORKS),
        scenario_sources=lambda w: SELECTION[w.selection]["scenario_sources"],
        zoo=lambda w: [e["name"] for e in SELECTION[w.selection]["zoo"]],
        outcomes=lambda w: selection_jobs.knowledge_outcomes(
            config["scenarios"][SELECTION[w.selection]["scenario"]]
        ),
        outcome=lambda w: SELECTION[w.selection]["outcome"],
        reproduction=lambda w: {
            "n_boot": SELECTION[w.selection]["n_boot"],
            **{
                k: config["reproduction"][k]
                for k in ("level", "seed", "min_separation")
            },
        },
        code=code_hash("scripts/selection_summary.py"),
    script:
        "../scripts/selection_summary.py"


rule selection_figure:
    input:
        scores="results/{selection}/scores.csv",
        agreement="results/{selection}/agreement.csv",
    output:
        scores_png=report(
            "results/{selection}/selection_scores.png",
            caption="../report/model_selection/scores.rst",
            category="Model selection",
            subcategory="{selection}",
        ),
        scores_pdf="results/{selection}/selection_scores.pdf",
        agreement_png=report(
            "results/{selection}/selection_agreement.png",
            caption="../report/model_selection/agreement.rst",
            category="Model selection",
            subcategory="{selection}",
        ),
        agreement_pdf="results/{selection}/selection_agreement.pdf",
    log:
        "results/{selection}/logs/figure.log",
    benchmark:
        "results/{selection}/benchmarks/figure.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        outcome=lambda w: SELECTION[w.selection]["outcome"],
        level=config["reproduction"]["level"],
        title=lambda w: w.selection,
        code=code_hash("scripts/selection_figure.py"),
    script:
        "../scripts/selection_figure.py"
