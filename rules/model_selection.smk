# Model selection: which source model should I transfer? (advtransfer/selection_jobs.py: candidates and config
# checks; advtransfer/selection.py: scores, agreement, costs; advtransfer/estimators.py: the estimators.) The
# candidates, a scenario's sources and / or a zoo of registry models, are all scored on the scenario's target
# task: one estimators job per candidate; the zoo's tau metrics, probes and fine-tuning come from the generic
# network rules (its evaluations against the scenario's reference); then the summary (scores.csv, agreement.csv,
# claims, tables) and the figures.
for _name, _block in SELECTION.items():
    for _key, _problem in selection_jobs.config_problems(_block, SCENARIOS):
        _fail(f"model_selection.{_name}.{_key}", _problem)
    add_experiment(
        _name,
        [
            f"results/{_name}/{file}"
            for file in (
                "scores.csv",
                "agreement.csv",
                "table.md",
                "table.tex",
                "selection_scores.png",
                "selection_scores.pdf",
                "selection_agreement.png",
                "selection_agreement.pdf",
            )
        ],
        networks=(
            selection_jobs.zoo_evaluations(_block, _name, NETWORKS[_block["scenario"]])
            if _block["zoo"]
            else None
        ),
    )


rule selection_zoo:
    input:
        weights=lambda w: (
            [selection_zoo_entry(w)["weights"]]
            if selection_zoo_entry(w).get("weights")
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
        entry=selection_zoo_entry,
        where=lambda w: f"model_selection.{w.selection}.zoo ({w.name})",
        channels=selection_target("channels"),
        image_size=selection_target("image_size"),
        code=code_hash("scripts/selection_zoo.py"),
        factory=lambda w: import_path_hash(selection_zoo_entry(w)["model"]),
    script:
        "../scripts/selection_zoo.py"


rule selection_scores:
    input:
        unpack(selection_inputs),
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
        target=selection_target("target"),
        image_size=selection_target("image_size"),
        channels=selection_target("channels"),
        settings=lambda w: SELECTION[w.selection]["estimators"],
        device=config["device"],
        code=code_hash("scripts/selection_scores.py"),
    script:
        "../scripts/selection_scores.py"


rule selection_summary:
    input:
        unpack(selection_summary_inputs),
    output:
        scores=report(
            "results/{selection}/scores.csv",
            caption="../report/selection_scores_table.rst",
            category="Model selection",
            subcategory="{selection}",
        ),
        agreement=report(
            "results/{selection}/agreement.csv",
            caption="../report/selection_agreement_table.rst",
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
        candidates=selection_candidates,
        scenario_sources=lambda w: SELECTION[w.selection]["scenario_sources"],
        zoo=lambda w: [e["name"] for e in SELECTION[w.selection]["zoo"]],
        outcomes=lambda w: scenarios.knowledge_outcomes(
            SCENARIOS[SELECTION[w.selection]["scenario"]]
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
            caption="../report/selection_scores.rst",
            category="Model selection",
            subcategory="{selection}",
        ),
        scores_pdf="results/{selection}/selection_scores.pdf",
        agreement_png=report(
            "results/{selection}/selection_agreement.png",
            caption="../report/selection_agreement.rst",
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
