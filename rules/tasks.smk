# Knowledge transfer among tasks (Section 4.4, Figure 4): each block of config `tasks` either trains one
# shapes-world network per task (the same encoder architecture, a light task decoder; advtransfer/tasks.py),
# then the adversarial transferability matrix (every task's PGD examples scored by every task's loss,
# ordinal normalisation), a tau matrix between the encoders' features, the knowledge-transfer affinity
# (a decoder of every task on every frozen encoder), and the two task trees with their agreement; or takes a
# user's `zoo` of task networks and images (adversarial views only: a zoo brings no labels).
from advtransfer.families.tasks import claims as tasks_claims
from advtransfer.families.tasks import jobs as task_jobs
from advtransfer.registry import TASKS as TASK_SPECS

TASKS_BLOCKS = BLOCKS["tasks"]


# The hash of every zoo entry's model code: a zoo job reruns when a factory it imports changes.
zoo_factory_hashes = lambda w: [
    import_path_hash(e["model"]) for e in TASKS_BLOCKS[w.tasks].get("zoo") or []
]


wildcard_constraints:
    task="|".join(TASK_SPECS),


rule train_task:
    input:
        dataset=dataset_marker("shapes"),
    output:
        model="results/{tasks}/models/{task}.safetensors",
        info="results/{tasks}/models/{task}.json",
    log:
        "results/{tasks}/logs/train_{task}.log",
    benchmark:
        "results/{tasks}/benchmarks/train_{task}.tsv"
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
        images=lambda w: TASKS_BLOCKS[w.tasks]["images"],
        train=lambda w: TASKS_BLOCKS[w.tasks]["train"],
        seed=lambda w: TASKS_BLOCKS[w.tasks]["seed"],
        device=config["device"],
        code=code_hash("scripts/train_task.py"),
    script:
        "../scripts/train_task.py"


rule task_atm:
    input:
        models=lambda w: task_jobs.task_models(TASKS_BLOCKS[w.tasks], w.tasks),
        dataset=lambda w: task_jobs.task_images(TASKS_BLOCKS[w.tasks]),
    output:
        matrix=report(
            "results/{tasks}/atm.csv",
            caption="../report/tasks/atm.rst",
            category="Tasks (Section 4.4)",
            subcategory="{tasks}",
        ),
        gains="results/{tasks}/atm_gains.safetensors",
    log:
        "results/{tasks}/logs/atm.log",
    benchmark:
        "results/{tasks}/benchmarks/atm.tsv"
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
        tasks=lambda w: task_jobs.task_names(TASKS_BLOCKS[w.tasks]),
        zoo=lambda w: TASKS_BLOCKS[w.tasks].get("zoo"),
        images=lambda w: TASKS_BLOCKS[w.tasks]["images"],
        attack=lambda w: TASKS_BLOCKS[w.tasks]["attack"],
        seed=lambda w: TASKS_BLOCKS[w.tasks]["seed"],
        device=config["device"],
        code=code_hash("scripts/task_atm.py"),
        factories=zoo_factory_hashes,
    script:
        "../scripts/task_atm.py"


rule task_tau:
    input:
        models=lambda w: task_jobs.task_models(TASKS_BLOCKS[w.tasks], w.tasks),
        dataset=lambda w: task_jobs.task_images(TASKS_BLOCKS[w.tasks]),
    output:
        report(
            "results/{tasks}/tau_matrix.csv",
            caption="../report/tasks/tau_matrix.rst",
            category="Tasks (Section 4.4)",
            subcategory="{tasks}",
        ),
    log:
        "results/{tasks}/logs/tau.log",
    benchmark:
        "results/{tasks}/benchmarks/tau.tsv"
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
        tasks=lambda w: task_jobs.task_names(TASKS_BLOCKS[w.tasks]),
        zoo=lambda w: TASKS_BLOCKS[w.tasks].get("zoo"),
        images=lambda w: TASKS_BLOCKS[w.tasks]["images"],
        tau=lambda w: TASKS_BLOCKS[w.tasks]["tau"],
        seed=lambda w: TASKS_BLOCKS[w.tasks]["seed"],
        device=config["device"],
        code=code_hash("scripts/task_tau.py"),
        factories=zoo_factory_hashes,
    script:
        "../scripts/task_tau.py"


rule task_affinity:
    input:
        models=lambda w: task_jobs.task_models(TASKS_BLOCKS[w.tasks], w.tasks),
        dataset=dataset_marker("shapes"),
    output:
        matrix=report(
            "results/{tasks}/affinity.csv",
            caption="../report/tasks/affinity.rst",
            category="Tasks (Section 4.4)",
            subcategory="{tasks}",
        ),
        losses="results/{tasks}/affinity_losses.safetensors",
    log:
        "results/{tasks}/logs/affinity.log",
    benchmark:
        "results/{tasks}/benchmarks/affinity.tsv"
    retries: 1
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=gpu_request(),
    params:
        root=config["data"]["root"],
        tasks=lambda w: TASKS_BLOCKS[w.tasks]["tasks"],
        images=lambda w: TASKS_BLOCKS[w.tasks]["images"],
        readout=lambda w: TASKS_BLOCKS[w.tasks]["readout"],
        seed=lambda w: TASKS_BLOCKS[w.tasks]["seed"],
        device=config["device"],
        code=code_hash("scripts/task_affinity.py"),
    script:
        "../scripts/task_affinity.py"


rule task_trees:
    input:
        atm="results/{tasks}/atm.csv",
        tau="results/{tasks}/tau_matrix.csv",
        affinity=lambda w: (
            []
            if task_jobs.is_zoo(TASKS_BLOCKS[w.tasks])
            else f"results/{w.tasks}/affinity.csv"
        ),
    output:
        trees=report(
            "results/{tasks}/trees.csv",
            caption="../report/tasks/trees.rst",
            category="Tasks (Section 4.4)",
            subcategory="{tasks}",
        ),
        table_md="results/{tasks}/table.md",
        table_tex="results/{tasks}/table.tex",
    log:
        "results/{tasks}/logs/trees.log",
    benchmark:
        "results/{tasks}/benchmarks/trees.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        kinds=lambda w: task_jobs.task_kinds(TASKS_BLOCKS[w.tasks]),
        clustering=lambda w: TASKS_BLOCKS[w.tasks]["clustering"],
        code=code_hash("scripts/task_trees.py"),
    script:
        "../scripts/task_trees.py"


rule task_figure:
    input:
        atm="results/{tasks}/atm.csv",
        tau="results/{tasks}/tau_matrix.csv",
        affinity=lambda w: (
            []
            if task_jobs.is_zoo(TASKS_BLOCKS[w.tasks])
            else f"results/{w.tasks}/affinity.csv"
        ),
        trees="results/{tasks}/trees.csv",
        claims="results/{tasks}/claims.csv",
    output:
        png=report(
            "results/{tasks}/figure4.png",
            caption="../report/tasks/figure4.rst",
            category="Tasks (Section 4.4)",
            subcategory="{tasks}",
        ),
        pdf="results/{tasks}/figure4.pdf",
    log:
        "results/{tasks}/logs/figure.log",
    benchmark:
        "results/{tasks}/benchmarks/figure.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        kinds=lambda w: task_jobs.task_kinds(TASKS_BLOCKS[w.tasks]),
        clustering=lambda w: TASKS_BLOCKS[w.tasks]["clustering"],
        primary_name=lambda w: tasks_claims.view_name(
            declared_claims(w.tasks)["tasks_agree"]["primary"]
        ),
        primary_normalisation=lambda w: declared_claims(w.tasks)["tasks_agree"][
            "primary"
        ]["normalisation"],
        code=code_hash("scripts/task_figure.py"),
    script:
        "../scripts/task_figure.py"
