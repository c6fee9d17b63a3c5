# The toy family's own rules: its values and its figure (the claims job and the report are the shared ones).
TOY = BLOCKS["toy"]


rule toy_values:
    output:
        report(
            "results/{toy}/values.csv",
            caption="captions/values.rst",
            category="Toy family",
            subcategory="{toy}",
        ),
    log:
        "results/{toy}/logs/values.log",
    benchmark:
        "results/{toy}/benchmarks/values.tsv"
    localrule: True
    conda:
        "../../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        block=lambda w: TOY[w.toy],
        code=code_hash("tests/toy_family/values.py"),
    script:
        "values.py"


rule toy_figure:
    input:
        "results/{toy}/values.csv",
    output:
        report(
            "results/{toy}/toy.png",
            caption="captions/figure.rst",
            category="Toy family",
            subcategory="{toy}",
        ),
        "results/{toy}/toy.pdf",
    log:
        "results/{toy}/logs/figure.log",
    benchmark:
        "results/{toy}/benchmarks/figure.tsv"
    localrule: True
    conda:
        "../../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        code=code_hash("tests/toy_family/figure.py"),
    script:
        "figure.py"
