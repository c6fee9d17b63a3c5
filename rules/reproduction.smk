# Claims vs findings. One generic `claims` job per experiment: its family's claims module (advtransfer/families/
# <family>/claims.py, found through the family table) judges the declared claims on the experiment's tables and
# writes claims.csv, checks.csv and fidelity.csv; `reproduction` gathers those of the run's experiments into
# results/reproduction.md. Neither rule names a family.
REPRODUCTION_OUTPUTS = ["results/reproduction.md", "results/reproduction.csv"]


rule claims:
    input:
        unpack(claims_files),
    output:
        claims=report(
            "results/{exp}/claims.csv",
            caption="../report/claims.rst",
            category="Reproduction",
            subcategory="{exp}",
        ),
        checks="results/{exp}/checks.csv",
        fidelity="results/{exp}/fidelity.csv",
    log:
        "results/{exp}/logs/claims.log",
    benchmark:
        "results/{exp}/benchmarks/claims.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        family_module=lambda w: f"{EXPERIMENTS[w.exp][0].module}.claims",
        block=lambda w: EXPERIMENTS[w.exp][1],
        declared=lambda w: declared_claims(w.exp),
        protocol=config["reproduction"],
        code=code_hash("scripts/claims.py"),
        family_code=lambda w: import_path_hash(f"{EXPERIMENTS[w.exp][0].module}.claims"),
    script:
        "../scripts/claims.py"


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
        protocol=config["reproduction"],
        not_run=[
            f.name
            for f in FAMILIES
            if not any(
                EXPERIMENTS.get(n, (None,))[0] == f for n in config["experiments"]
            )
        ],
        code=code_hash("scripts/reproduction.py"),
    script:
        "../scripts/reproduction.py"
