# advtransfer: does adversarial transferability indicate knowledge transferability?
# (Liang, Zhang, Wang, Yang, Koyejo, Li; ICML 2021). See README.md; docs/extending.md for how the rules fit.
from snakemake.utils import min_version, validate

from advtransfer import run_summary

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


validate_config()


# Experiment families: each registers its experiments (add_experiment) and holds its own rules.
include: "rules/synthetic.smk"
include: "rules/scenarios.smk"
include: "rules/attributes.smk"
include: "rules/tasks.smk"
include: "rules/robustness.smk"
include: "rules/interactions.smk"
include: "rules/model_selection.smk"
# The network stages every family shares.
include: "rules/networks.smk"
include: "rules/reproduction.smk"


check_experiments()
check_claims()


wildcard_constraints:
    experiment="|".join(NETWORKS) or "(?!)",
    scenario="|".join(SCENARIOS) or "(?!)",
    attributes="|".join(ATTRIBUTES) or "(?!)",
    tasks="|".join(TASKS_BLOCKS) or "(?!)",
    robustness="|".join(ROBUSTNESS) or "(?!)",
    interactions="|".join(INTERACTIONS) or "(?!)",
    selection="|".join(SELECTION) or "(?!)",
    exp="|".join(EXPERIMENTS) or "(?!)",
    candidate=r"\w+",
    retrained=r"\w+",
    task="|".join(TASK_SPECS),
    dataset="|".join(dataset_names()) or "(?!)",
    split=r"\w+",
    model=r"\w+",
    evaluation=r"\w+",
    seed=r"\d+",


rule all:
    default_target: True
    input:
        [path for name in config["experiments"] for path in OUTPUTS[name]],
        REPRODUCTION_OUTPUTS,
    localrule: True


# The end of a run: where the results are (advtransfer/run_summary.py); on a failure Snakemake has printed the
# failed job's `log:` file, which holds the script's traceback (scripts/_job.py sends stderr there).
onsuccess:
    print(run_summary.run_summary(config["experiments"], OUTPUTS))


onerror:
    print(
        "advtransfer: the run stopped. The failed job's log file (printed above, after 'log:') holds its "
        "traceback; fix the cause and run the same command again to continue where it stopped."
    )
