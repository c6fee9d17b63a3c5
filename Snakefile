# advtransfer: does adversarial transferability indicate knowledge transferability?
# (Liang, Zhang, Wang, Yang, Koyejo, Li; ICML 2021). See README.md and ../shared/DESIGN.md.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/synthetic.smk"


OUTPUTS = {
    "synthetic": [
        "results/synthetic/sweep.csv",
        "results/synthetic/summary.csv",
        "results/synthetic/figure2.png",
        "results/synthetic/figure2.pdf",
    ],
}


localrules:
    all,
    synthetic_summary,
    synthetic_figure,


rule all:
    input:
        [path for experiment in config["experiments"] for path in OUTPUTS[experiment]],
    default_target: True
