# advtransfer: does adversarial transferability indicate knowledge transferability?
# (Liang, Zhang, Wang, Yang, Koyejo, Li; ICML 2021). See README.md.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


validate(config, "schemas/config.schema.yaml")


include: "rules/common.smk"


check_config()


wildcard_constraints:
    scenario="|".join(SCENARIOS) or "(?!)",
    source=r"[A-Za-z0-9]+",
    seed=r"\d+",


include: "rules/synthetic.smk"
include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/attack.smk"
include: "rules/metrics.smk"
include: "rules/transfer.smk"
include: "rules/report.smk"


localrules:
    all,
    dataset,
    synthetic_summary,
    synthetic_figure,
    scenario_summary,
    scenario_figure,


rule all:
    default_target: True
    input:
        [path for name in config["experiments"] for path in experiment_outputs(name)],
