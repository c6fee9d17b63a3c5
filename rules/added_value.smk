# Added value over the design (advtransfer/families/added_value/jobs.py: design factors and config checks;
# advtransfer/added_value.py: the measurements). A block names a model-selection block whose scenario is a
# crossed design; its scores.csv (every candidate's scores and outcomes) becomes added_value.csv and the figure;
# the shared claims rule (rules/reproduction.smk) judges the claims.
from advtransfer.families.added_value import jobs as added_jobs

ADDED = BLOCKS["added_value"]


rule added_value_summary:
    input:
        unpack(lambda w: added_jobs.summary_inputs(ADDED[w.added])),
    output:
        added_value=report(
            "results/{added}/added_value.csv",
            caption="../report/added_value/added_value.rst",
            category="Added value over the design",
            subcategory="{added}",
        ),
        sources=report(
            "results/{added}/sources.csv",
            caption="../report/added_value/sources.rst",
            category="Added value over the design",
            subcategory="{added}",
        ),
    log:
        "results/{added}/logs/summary.log",
    benchmark:
        "results/{added}/benchmarks/summary.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        factors=lambda w: added_jobs.source_factors(
            added_jobs.scenario_of(ADDED[w.added], config)
        ),
        known=lambda w: ADDED[w.added]["known"],
        outcomes=lambda w: added_jobs.outcomes(ADDED[w.added], config),
        settings=lambda w: {
            "n_boot": ADDED[w.added]["n_boot"],
            "level_ci": config["reproduction"]["level"],
            "n_perm": config["reproduction"]["n_perm"],
            "perm_seed": config["reproduction"]["seed"],
            "alpha": config["reproduction"]["alpha"],
        },
        code=code_hash("scripts/added_value_summary.py"),
    script:
        "../scripts/added_value_summary.py"


rule added_value_figure:
    input:
        added_value="results/{added}/added_value.csv",
        sources="results/{added}/sources.csv",
        agreement=lambda w: added_jobs.summary_inputs(ADDED[w.added])["agreement"],
    output:
        png=report(
            "results/{added}/added_value.png",
            caption="../report/added_value/figure.rst",
            category="Added value over the design",
            subcategory="{added}",
        ),
        pdf="results/{added}/added_value.pdf",
    log:
        "results/{added}/logs/figure.log",
    benchmark:
        "results/{added}/benchmarks/figure.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        outcome=lambda w: ADDED[w.added]["outcome"],
        estimator=lambda w: added_jobs.declared_estimator(declared_claims(w.added)),
        title=lambda w: w.added,
        code=code_hash("scripts/added_value_figure.py"),
    script:
        "../scripts/added_value_figure.py"
