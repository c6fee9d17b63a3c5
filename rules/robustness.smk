# Robustness transfer across source training schemes (Kopetzki et al.), robust representation matching
# (Vaishnavi et al.) and randomized-smoothing certificates (Cohen et al.): each block of config `robustness`
# becomes its network jobs (advtransfer/families/robustness/jobs.py: one source per scheme and seed, rrm students reading
# their teacher, a target reference, tau metrics per source) for the generic stages; here: each source's
# robustness on the source task, each retraining scheme's target model and its robustness, the summary,
# table and figure.
from advtransfer.families.robustness import claims as robustness_family
from advtransfer.families.robustness import jobs as robustness_jobs

ROBUSTNESS = BLOCKS["robustness"]


wildcard_constraints:
    retrained=r"\w+",


rule robust_eval:
    input:
        unpack(
            lambda w: robustness_jobs.robust_inputs(
                NETWORKS, w.robustness, ROBUSTNESS[w.robustness], w.name
            )
        ),
    output:
        "results/{robustness}/robust/{name}.json",
    log:
        "results/{robustness}/logs/robust_{name}.log",
    benchmark:
        "results/{robustness}/benchmarks/robust_{name}.tsv"
    wildcard_constraints:
        name=r"(source|target)_\w+",
    retries: 1
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=gpu_request(),
    params:
        root=config["data"]["root"],
        data=lambda w: robustness_jobs.robust_data(ROBUSTNESS[w.robustness], w.name),
        evaluation=lambda w: ROBUSTNESS[w.robustness]["evaluation"],
        seed=lambda w: robustness_jobs.robust_seed(NETWORKS, w.robustness, w.name),
        device=config["device"],
        code=code_hash("scripts/robust_eval.py"),
    script:
        "../scripts/robust_eval.py"


rule retrain:
    input:
        unpack(
            lambda w: robustness_jobs.retrain_inputs(
                NETWORKS, w.robustness, ROBUSTNESS[w.robustness], w.retrained
            )
        ),
    output:
        model="results/{robustness}/retrained/{retrained}.safetensors",
        info="results/{robustness}/retrained/{retrained}.json",
    log:
        "results/{robustness}/logs/retrain_{retrained}.log",
    benchmark:
        "results/{robustness}/benchmarks/retrain_{retrained}.tsv"
    retries: 1
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=gpu_request(),
    params:
        root=config["data"]["root"],
        scheme=lambda w: robustness_jobs.split_retrained(w.retrained)[1],
        settings=lambda w: ROBUSTNESS[w.robustness]["retrain"][
            robustness_jobs.split_retrained(w.retrained)[1]
        ],
        target=lambda w: NETWORKS[w.robustness]["evaluations"][
            robustness_jobs.split_retrained(w.retrained)[0]
        ]["target"],
        channels=lambda w: ROBUSTNESS[w.robustness]["channels"],
        image_size=lambda w: ROBUSTNESS[w.robustness]["image_size"],
        seed=lambda w: NETWORKS[w.robustness]["evaluations"][
            robustness_jobs.split_retrained(w.retrained)[0]
        ]["seed"],
        device=config["device"],
        checkpoint_dir="results/{robustness}/checkpoints/retrain_{retrained}",
        code=code_hash("scripts/retrain.py"),
        objective_code=lambda w: (
            import_path_hash(OBJECTIVES["pgd_at"])
            if robustness_jobs.split_retrained(w.retrained)[1] == "adv_finetune"
            else ""
        ),
    script:
        "../scripts/retrain.py"


rule robustness_summary:
    input:
        sources=lambda w: expand(
            "results/{robustness}/models/{model}.json",
            robustness=w.robustness,
            model=robustness_jobs.sources(ROBUSTNESS[w.robustness]),
        ),
        robust_sources=lambda w: expand(
            "results/{robustness}/robust/{model}.json",
            robustness=w.robustness,
            model=robustness_jobs.sources(ROBUSTNESS[w.robustness]),
        ),
        retrained=lambda w: expand(
            "results/{robustness}/retrained/{name}.json",
            robustness=w.robustness,
            name=robustness_jobs.retrained_names(ROBUSTNESS[w.robustness]),
        ),
        robust_targets=lambda w: expand(
            "results/{robustness}/robust/target_{name}.json",
            robustness=w.robustness,
            name=robustness_jobs.retrained_names(ROBUSTNESS[w.robustness]),
        ),
        metrics=evaluation_files(
            "results/{experiment}/metrics/{evaluation}.json", "robustness"
        ),
    output:
        summary=report(
            "results/{robustness}/robustness.csv",
            caption="../report/robustness/robustness.rst",
            category="Robustness transfer",
            subcategory="{robustness}",
        ),
        table_md="results/{robustness}/table.md",
        table_tex="results/{robustness}/table.tex",
    log:
        "results/{robustness}/logs/summary.log",
    benchmark:
        "results/{robustness}/benchmarks/summary.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        schemes=lambda w: list(ROBUSTNESS[w.robustness]["schemes"]),
        seeds=lambda w: ROBUSTNESS[w.robustness]["seeds"],
        evaluations=lambda w: evaluation_labels(w, "robustness"),
        compared=lambda w: robustness_family.compared(
            ROBUSTNESS[w.robustness], declared_claims(w.robustness)
        ),
        n_boot=config["reproduction"]["n_boot"],
        code=code_hash("scripts/robustness_summary.py"),
    script:
        "../scripts/robustness_summary.py"


rule robustness_figure:
    input:
        summary="results/{robustness}/robustness.csv",
    output:
        png=report(
            "results/{robustness}/robustness.png",
            caption="../report/robustness/figure.rst",
            category="Robustness transfer",
            subcategory="{robustness}",
        ),
        pdf="results/{robustness}/robustness.pdf",
    log:
        "results/{robustness}/logs/figure.log",
    benchmark:
        "results/{robustness}/benchmarks/figure.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        claims=lambda w: robustness_family.compared(
            ROBUSTNESS[w.robustness], declared_claims(w.robustness)
        ),
        radii=lambda w: ROBUSTNESS[w.robustness]["evaluation"]["smoothing"]["radii"],
        title=lambda w: w.robustness,
        code=code_hash("scripts/robustness_figure.py"),
    script:
        "../scripts/robustness_figure.py"
