# Data-distribution scenarios (Section 4.2, Figure 3): each scenario's config block becomes its network
# jobs (advtransfer/scenarios.py: sources per class mixture and seed, one reference, one evaluation per
# source and seed) for the generic stages; here: its summary (every source and seed, the design check,
# rank correlations of every metric with every knowledge outcome), tables and Figure 3.
for _name, _block in SCENARIOS.items():
    add_experiment(
        _name,
        [
            f"results/{_name}/{file}"
            for file in (
                "summary.csv",
                "design.csv",
                "correlations.csv",
                "table.md",
                "table.tex",
                "figure3.png",
                "figure3.pdf",
            )
        ],
        networks=scenarios.network_jobs(_block),
    )


rule scenario_summary:
    input:
        metrics=evaluation_files("results/{experiment}/metrics/{evaluation}.json"),
        probes=evaluation_files("results/{experiment}/probes/{evaluation}.json"),
        finetunes=evaluation_files("results/{experiment}/finetunes/{evaluation}.json"),
        sources=evaluation_files("results/{experiment}/models/{source}.json"),
        reference="results/{scenario}/models/reference.json",
    output:
        summary=report(
            "results/{scenario}/summary.csv",
            caption="../report/summary.rst",
            category="Data distributions (Section 4.2)",
            subcategory="{scenario}",
        ),
        design=report(
            "results/{scenario}/design.csv",
            caption="../report/design.rst",
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
        rows=evaluation_labels,
        outcomes=lambda w: scenarios.knowledge_outcomes(SCENARIOS[w.scenario]),
        outcome=lambda w: SCENARIOS[w.scenario]["outcome"],
        n_boot=config["reproduction"]["n_boot"],
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
        outcome=lambda w: SCENARIOS[w.scenario]["outcome"],
        code=code_hash("scripts/scenario_figure.py"),
    script:
        "../scripts/scenario_figure.py"
