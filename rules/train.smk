# Source models (one job per scenario x source x seed) and the reference model on the target task.


rule train_source:
    input:
        split="results/{scenario}/splits/source_{source}.safetensors",
        dataset=dataset_marker("source"),
    output:
        model="results/{scenario}/models/source_{source}_seed{seed}.safetensors",
        info="results/{scenario}/models/source_{source}_seed{seed}.json",
    log:
        "results/{scenario}/logs/train_source_{source}_seed{seed}.log",
    benchmark:
        "results/{scenario}/benchmarks/train_source_{source}_seed{seed}.tsv"
    wildcard_constraints:
        seed=r"\d+",
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
        dataset=scenario_param("source_dataset"),
        classes=source_classes,
        domain="identity",
        model=scenario_param("model"),
        image_size=scenario_param("image_size"),
        channels=scenario_param("channels"),
        train=scenario_param("train"),
        device=config["device"],
        checkpoint_dir="results/{scenario}/checkpoints/source_{source}_seed{seed}",
        code=code_hash("scripts/train.py"),
    script:
        "../scripts/train.py"


rule train_reference:
    input:
        split="results/{scenario}/splits/target.safetensors",
        dataset=dataset_marker("target"),
    output:
        model="results/{scenario}/models/reference.safetensors",
        info="results/{scenario}/models/reference.json",
    log:
        "results/{scenario}/logs/train_reference.log",
    benchmark:
        "results/{scenario}/benchmarks/train_reference.tsv"
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
        dataset=scenario_param("target", "dataset"),
        classes=scenario_param("target", "classes"),
        domain=scenario_param("target", "domain"),
        domain_seed=scenario_param("split", "seed"),
        model=scenario_param("model"),
        image_size=scenario_param("image_size"),
        channels=scenario_param("channels"),
        train=scenario_param("train"),
        seed=scenario_param("reference_seed"),
        device=config["device"],
        checkpoint_dir="results/{scenario}/checkpoints/reference",
        code=code_hash("scripts/train.py"),
    script:
        "../scripts/train.py"
