# Knowledge transfer among attributes (Section 4.3, Table 1): each block of config `attributes` becomes its
# network jobs (advtransfer/families/attributes/jobs.py: one binary source per attribute data set and seed, an identity
# reference, one evaluation per source) for the generic stages; here: its summary (attributes.csv, the
# design check, correlations over all attributes, the identity-defining check, Table 1 analog) and figure.
from advtransfer.families.attributes import jobs as attribute_jobs

ATTRIBUTES = BLOCKS["attributes"]


rule attributes_summary:
    input:
        metrics=evaluation_files(
            "results/{experiment}/metrics/{evaluation}.json", "attributes"
        ),
        probes=evaluation_files(
            "results/{experiment}/probes/{evaluation}.json", "attributes"
        ),
        sources=evaluation_files(
            "results/{experiment}/models/{source}.json", "attributes"
        ),
        reference="results/{attributes}/models/reference.json",
    output:
        summary=report(
            "results/{attributes}/attributes.csv",
            caption="../report/attributes/attributes.rst",
            category="Attributes (Section 4.3)",
            subcategory="{attributes}",
        ),
        design=report(
            "results/{attributes}/design.csv",
            caption="../report/attributes/design.rst",
            category="Attributes (Section 4.3)",
            subcategory="{attributes}",
        ),
        correlations=report(
            "results/{attributes}/correlations.csv",
            caption="../report/attributes/correlations.rst",
            category="Attributes (Section 4.3)",
            subcategory="{attributes}",
        ),
        check=report(
            "results/{attributes}/identity_check.csv",
            caption="../report/attributes/identity_check.rst",
            category="Attributes (Section 4.3)",
            subcategory="{attributes}",
        ),
        table_md="results/{attributes}/table.md",
        table_tex="results/{attributes}/table.tex",
    log:
        "results/{attributes}/logs/summary.log",
    benchmark:
        "results/{attributes}/benchmarks/summary.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        rows=lambda w: evaluation_labels(w, "attributes"),
        identity_defining=lambda w: [
            attribute_jobs.attribute_name(d)
            for d in ATTRIBUTES[w.attributes]["identity_defining"]
        ],
        outcomes=lambda w: attribute_jobs.knowledge_outcomes(ATTRIBUTES[w.attributes]),
        outcome=lambda w: ATTRIBUTES[w.attributes]["outcome"],
        rank_by=lambda w: ATTRIBUTES[w.attributes]["rank_by"],
        top=lambda w: ATTRIBUTES[w.attributes]["top"],
        n_boot=config["reproduction"]["n_boot"],
        code=code_hash("scripts/attributes_summary.py"),
    script:
        "../scripts/attributes_summary.py"


rule attributes_figure:
    input:
        summary="results/{attributes}/attributes.csv",
        correlations="results/{attributes}/correlations.csv",
        check="results/{attributes}/identity_check.csv",
    output:
        png=report(
            "results/{attributes}/attributes.png",
            caption="../report/attributes/figure.rst",
            category="Attributes (Section 4.3)",
            subcategory="{attributes}",
        ),
        pdf="results/{attributes}/attributes.pdf",
    log:
        "results/{attributes}/logs/figure.log",
    benchmark:
        "results/{attributes}/benchmarks/figure.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        n_attributes=lambda w: len(ATTRIBUTES[w.attributes]["source_datasets"]),
        target=lambda w: ATTRIBUTES[w.attributes]["target"]["dataset"],
        rank_by=lambda w: ATTRIBUTES[w.attributes]["rank_by"],
        outcome=lambda w: ATTRIBUTES[w.attributes]["outcome"],
        code=code_hash("scripts/attributes_figure.py"),
    script:
        "../scripts/attributes_figure.py"
