# Claims vs findings (results/reproduction.md): every claim of the paper tested by a measurement of this
# run's experiments (config `experiments`), with verdicts from the criteria in config `reproduction`.
# Claims of an experiment the run does not include are listed as not measured.
REPRODUCTION_OUTPUTS = ["results/reproduction.md", "results/reproduction.csv"]


rule reproduction:
    input:
        unpack(reproduction_inputs),
    output:
        md="results/reproduction.md",
        csv=report(
            "results/reproduction.csv",
            caption="../report/reproduction.rst",
            category="Reproduction",
        ),
    log:
        "results/logs/reproduction.log",
    benchmark:
        "results/benchmarks/reproduction.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        criteria=config["reproduction"],
        scenarios=[(name, SCENARIOS[name]["outcome"]) for name in RUN_SCENARIOS],
        attributes=[(name, ATTRIBUTES[name]["outcome"]) for name in RUN_ATTRIBUTES],
        tasks=RUN_TASKS,
        robustness=RUN_ROBUSTNESS,
        interactions=RUN_INTERACTIONS,
        selection=RUN_SELECTION,
        code=code_hash("scripts/reproduction.py"),
    script:
        "../scripts/reproduction.py"
