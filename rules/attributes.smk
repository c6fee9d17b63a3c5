# Knowledge transfer among attributes (Section 4.3, Table 1): each block of config `attributes` becomes its
# network jobs (advtransfer/attributes.py: one binary source per attribute data set and seed, an identity
# reference, one evaluation per source) for the generic stages; here: its summary (attributes.csv, the
# design check, correlations over all attributes, the identity-defining check, Table 1 analog) and figure.
ATTRIBUTES = config.get("attributes") or {}

for _name, _block in ATTRIBUTES.items():
    for _key, _problem in attributes.config_problems(_block):
        _fail(f"attributes.{_name}.{_key}", _problem)
    add_experiment(
        _name,
        [
            f"results/{_name}/{file}"
            for file in (
                "attributes.csv",
                "design.csv",
                "correlations.csv",
                "identity_check.csv",
                "table.md",
                "table.tex",
                "attributes.png",
                "attributes.pdf",
            )
        ],
        networks=attributes.network_jobs(_block),
    )


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
            caption="../report/attributes.rst",
            category="Attributes (Section 4.3)",
            subcategory="{attributes}",
        ),
        design=report(
            "results/{attributes}/design.csv",
            caption="../report/attributes_design.rst",
            category="Attributes (Section 4.3)",
            subcategory="{attributes}",
        ),
        correlations=report(
            "results/{attributes}/correlations.csv",
            caption="../report/attributes_correlations.rst",
            category="Attributes (Section 4.3)",
            subcategory="{attributes}",
        ),
        check=report(
            "results/{attributes}/identity_check.csv",
            caption="../report/identity_check.rst",
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
            attributes.attribute_name(d)
            for d in ATTRIBUTES[w.attributes]["identity_defining"]
        ],
        outcomes=lambda w: attributes.knowledge_outcomes(ATTRIBUTES[w.attributes]),
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
            caption="../report/attributes_figure.rst",
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
