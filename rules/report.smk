# Per-scenario summary (table of every source and seed, rank correlations) and Figure 3.


rule scenario_summary:
    input:
        metrics=lambda w: scenario_jobs(
            "results/{scenario}/metrics/{source}_seed{seed}.json", w.scenario
        ),
        probes=lambda w: scenario_jobs(
            "results/{scenario}/probes/{source}_seed{seed}.json", w.scenario
        ),
        sources=lambda w: scenario_jobs(
            "results/{scenario}/models/source_{source}_seed{seed}.json", w.scenario
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
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        target_classes=scenario_param("target", "classes"),
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
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        source_dataset=scenario_param("source_dataset"),
        target_dataset=scenario_param("target", "dataset"),
        target_classes=scenario_param("target", "classes"),
        code=code_hash("scripts/scenario_figure.py"),
    script:
        "../scripts/scenario_figure.py"
