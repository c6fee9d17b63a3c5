# advtransfer: does adversarial transferability indicate knowledge transferability?
# (Liang, Zhang, Wang, Yang, Koyejo, Li; ICML 2021). See README.md; docs/architecture.md for how the rules fit.
# This file names no family: the table of families (advtransfer/families/__init__.py) does.
from snakemake.utils import min_version

from advtransfer import config as configuration
from advtransfer import jobserver, run_summary

min_version("9.0")

# The config files read strictly before Snakemake reads config.yaml: a duplicated key or a YAML error names the
# file and line (Snakemake's own loader does neither; it reads --configfile files before this code runs).
try:
    configuration.check_files(["config.yaml", *workflow.overwrite_configfiles])
except ValueError as err:
    raise WorkflowError(f"Error reading config: {err}") from None


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


validate_config()
register_families()


# Every family's own rules (the table of families, advtransfer/families/__init__.py), then the network stages
# they share and the claims and report.
for _family in FAMILIES:

    include: _family.rules


include: "rules/networks.smk"
include: "rules/reproduction.smk"


check_experiments()
check_claims()
# each family's rules name its experiments by its own wildcard
workflow.global_wildcard_constraints(
    **{f.wildcard: "|".join(BLOCKS[f.name]) or "(?!)" for f in FAMILIES if f.wildcard}
)


wildcard_constraints:
    experiment="|".join(NETWORKS) or "(?!)",
    exp="|".join(EXPERIMENTS) or "(?!)",
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


# A local run's rule scripts run in forks of one process that has imported torch once (advtransfer/jobserver.py;
# ADVTRANSFER_JOBSERVER=0 turns it off). Cluster jobs and dry runs never use it.
JOBSERVER = {}


onstart:
    if workflow.local_exec and workflow.is_main_process:
        JOBSERVER["process"] = jobserver.start()


# The end of a run: where the results are (advtransfer/run_summary.py); on a failure Snakemake has printed the
# failed job's `log:` file, which holds the script's traceback (scripts/_job.py sends stderr there).
onsuccess:
    jobserver.stop(JOBSERVER.pop("process", None))
    print(run_summary.run_summary(config["experiments"], OUTPUTS))


onerror:
    jobserver.stop(JOBSERVER.pop("process", None))
    print(
        "advtransfer: the run stopped. The failed job's log file (printed above, after 'log:') holds its "
        "traceback; fix the cause and run the same command again to continue where it stopped."
    )
