# Data acquisition (local: cluster nodes never need the internet) and per-scenario index files.


rule dataset:
    output:
        "results/datasets/{dataset}.json",
    log:
        "results/datasets/logs/{dataset}.log",
    benchmark:
        "results/datasets/benchmarks/{dataset}.tsv"
    wildcard_constraints:
        dataset="cifar10|stl10|fashion_mnist|digits",
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        root=config["data"]["root"],
        mirrors=config["data"]["mirrors"],
        download=config["data"]["download"],
        code=code_hash("scripts/dataset.py"),
    script:
        "../scripts/dataset.py"


rule split_source:
    input:
        dataset_marker("source"),
    output:
        "results/{scenario}/splits/source_{source}.safetensors",
    log:
        "results/{scenario}/logs/split_source_{source}.log",
    benchmark:
        "results/{scenario}/benchmarks/split_source_{source}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        root=config["data"]["root"],
        dataset=scenario_param("source_dataset"),
        classes=source_classes,
        target_dataset=scenario_param("target", "dataset"),
        pool_fraction=scenario_param("split", "source_pool_fraction"),
        val_fraction=scenario_param("split", "val_fraction"),
        max_per_class=scenario_param("split", "max_train_per_class"),
        seed=scenario_param("split", "seed"),
        code=code_hash("scripts/split_source.py"),
    script:
        "../scripts/split_source.py"


rule split_target:
    input:
        target=dataset_marker("target"),
        source=dataset_marker("source"),
    output:
        "results/{scenario}/splits/target.safetensors",
    log:
        "results/{scenario}/logs/split_target.log",
    benchmark:
        "results/{scenario}/benchmarks/split_target.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        root=config["data"]["root"],
        source_dataset=scenario_param("source_dataset"),
        target=scenario_param("target"),
        split=scenario_param("split"),
        code=code_hash("scripts/split_target.py"),
    script:
        "../scripts/split_target.py"
