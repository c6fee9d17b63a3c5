# The network stages every family shares: data sets, splits, training, PGD, tau metrics, linear probes,
# fine-tuning.
# Every param comes from the job's entry in NETWORKS (rules/common.smk), which each family's jobs module
# (its network_jobs hook) builds from its config block; nothing here knows a family.


rule dataset:
    input:
        dataset_inputs,
    output:
        "results/datasets/{dataset}.json",
    log:
        "results/datasets/logs/{dataset}.log",
    benchmark:
        "results/datasets/benchmarks/{dataset}.tsv"
    localrule: True
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        name=lambda w: dataset_names()[w.dataset],
        root=config["data"]["root"],
        mirrors=config["data"]["mirrors"],
        download=config["data"]["download"],
        code=code_hash("scripts/dataset.py"),
        reader=reader_hash,
    script:
        "../scripts/dataset.py"


rule split:
    input:
        split_inputs,
    output:
        "results/{experiment}/splits/{split}.safetensors",
    log:
        "results/{experiment}/logs/split_{split}.log",
    benchmark:
        "results/{experiment}/benchmarks/split_{split}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        root=config["data"]["root"],
        split=network_job("splits", "split"),
        code=code_hash("scripts/split.py"),
    script:
        "../scripts/split.py"


rule train:
    input:
        unpack(model_inputs),
    output:
        model="results/{experiment}/models/{model}.safetensors",
        info="results/{experiment}/models/{model}.json",
    log:
        "results/{experiment}/logs/train_{model}.log",
    benchmark:
        "results/{experiment}/benchmarks/train_{model}.tsv"
    retries: 1
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=720,
        gpu=gpu_request(),
    params:
        root=config["data"]["root"],
        dataset=network_param("models", "model", "dataset"),
        classes=network_param("models", "model", "classes"),
        domain=network_param("models", "model", "domain"),
        domain_seed=network_param("models", "model", "domain_seed"),
        architecture=network_param("models", "model", "architecture"),
        image_size=network_param("models", "model", "image_size"),
        channels=network_param("models", "model", "channels"),
        objective=network_param("models", "model", "objective"),
        objective_params=network_param("models", "model", "objective_params"),
        train=network_param("models", "model", "train"),
        seed=network_param("models", "model", "seed"),
        device=config["device"],
        checkpoint_dir="results/{experiment}/checkpoints/{model}",
        code=code_hash("scripts/train.py"),
        objective_code=training_code,
    script:
        "../scripts/train.py"


rule attack:
    input:
        unpack(evaluation_inputs("source")),
    output:
        "results/{experiment}/attacks/{evaluation}.safetensors",
    log:
        "results/{experiment}/logs/attack_{evaluation}.log",
    benchmark:
        "results/{experiment}/benchmarks/attack_{evaluation}.tsv"
    retries: 1
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=gpu_request(),
    params:
        root=config["data"]["root"],
        target=network_param("evaluations", "evaluation", "target"),
        image_size=network_param("evaluations", "evaluation", "image_size"),
        channels=network_param("evaluations", "evaluation", "channels"),
        attack=network_param("evaluations", "evaluation", "attack"),
        seed=network_param("evaluations", "evaluation", "seed"),
        device=config["device"],
        code=code_hash("scripts/attack.py"),
    script:
        "../scripts/attack.py"


rule metrics:
    input:
        unpack(evaluation_inputs("source", "reference", "attack")),
    output:
        "results/{experiment}/metrics/{evaluation}.json",
    log:
        "results/{experiment}/logs/metrics_{evaluation}.log",
    benchmark:
        "results/{experiment}/benchmarks/metrics_{evaluation}.tsv"
    retries: 1
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=gpu_request(),
    params:
        root=config["data"]["root"],
        target=network_param("evaluations", "evaluation", "target"),
        image_size=network_param("evaluations", "evaluation", "image_size"),
        channels=network_param("evaluations", "evaluation", "channels"),
        metrics=network_param("evaluations", "evaluation", "metrics"),
        seed=network_param("evaluations", "evaluation", "seed"),
        device=config["device"],
        code=code_hash("scripts/metrics.py"),
    script:
        "../scripts/metrics.py"


rule probe:
    input:
        unpack(evaluation_inputs("source")),
    output:
        "results/{experiment}/probes/{evaluation}.json",
    log:
        "results/{experiment}/logs/probe_{evaluation}.log",
    benchmark:
        "results/{experiment}/benchmarks/probe_{evaluation}.tsv"
    retries: 1
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
        gpu=gpu_request(),
    params:
        root=config["data"]["root"],
        target=network_param("evaluations", "evaluation", "target"),
        image_size=network_param("evaluations", "evaluation", "image_size"),
        channels=network_param("evaluations", "evaluation", "channels"),
        probe=network_param("evaluations", "evaluation", "probe"),
        device=config["device"],
        code=code_hash("scripts/probe.py"),
    script:
        "../scripts/probe.py"


rule finetune:
    input:
        unpack(evaluation_inputs("source")),
    output:
        "results/{experiment}/finetunes/{evaluation}.json",
    log:
        "results/{experiment}/logs/finetune_{evaluation}.log",
    benchmark:
        "results/{experiment}/benchmarks/finetune_{evaluation}.tsv"
    retries: 1
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=gpu_request(),
    params:
        root=config["data"]["root"],
        target=network_param("evaluations", "evaluation", "target"),
        image_size=network_param("evaluations", "evaluation", "image_size"),
        channels=network_param("evaluations", "evaluation", "channels"),
        finetune=network_param("evaluations", "evaluation", "finetune"),
        seed=network_param("evaluations", "evaluation", "seed"),
        device=config["device"],
        checkpoint_dir="results/{experiment}/checkpoints/finetune_{evaluation}",
        code=code_hash("scripts/finetune.py"),
    script:
        "../scripts/finetune.py"
