# Data-distribution scenarios (Section 4.2, Figure 3): each scenario's config block becomes its network
# jobs (advtransfer/families/scenarios/jobs.py: sources per class mixture and seed, one reference, one
# evaluation per source and seed) for the shared stages; here: its summary (every source and seed, the design
# check, rank correlations of every metric with every knowledge outcome), tables and Figure 3.
from advtransfer.families.scenarios import jobs as scenario_jobs

SCENARIOS = BLOCKS["scenarios"]


rule scenario_summary:
    input:
        metrics=evaluation_files(
            "results/{experiment}/metrics/{evaluation}.json", "scenario"
        ),
        probes=evaluation_files(
            "results/{experiment}/probes/{evaluation}.json", "scenario"
        ),
        finetunes=evaluation_files(
            "results/{experiment}/finetunes/{evaluation}.json", "scenario"
        ),
        sources=evaluation_files(
            "results/{experiment}/models/{source}.json", "scenario"
        ),
        references=evaluation_files(
            "results/{experiment}/models/{reference}.json", "scenario"
        ),
    output:
        summary=report(
            "results/{scenario}/summary.csv",
            caption="../report/scenarios/summary.rst",
            category="Data distributions (Section 4.2)",
            subcategory="{scenario}",
        ),
        design=report(
            "results/{scenario}/design.csv",
            caption="../report/scenarios/design.rst",
            category="Data distributions (Section 4.2)",
            subcategory="{scenario}",
        ),
        correlations=report(
            "results/{scenario}/correlations.csv",
            caption="../report/scenarios/correlations.rst",
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
        rows=lambda w: evaluation_labels(w, "scenario"),
        outcomes=lambda w: scenario_jobs.knowledge_outcomes(SCENARIOS[w.scenario]),
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
            caption="../report/scenarios/figure3.rst",
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
