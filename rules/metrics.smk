# Adversarial transferability of each source to the reference: tau1, tau2, alpha, cross adversarial loss.


rule metrics:
    input:
        source="results/{scenario}/models/source_{source}_seed{seed}.safetensors",
        source_info="results/{scenario}/models/source_{source}_seed{seed}.json",
        reference="results/{scenario}/models/reference.safetensors",
        reference_info="results/{scenario}/models/reference.json",
        attack="results/{scenario}/attacks/{source}_seed{seed}.safetensors",
        split="results/{scenario}/splits/target.safetensors",
        dataset=dataset_marker("target"),
    output:
        "results/{scenario}/metrics/{source}_seed{seed}.json",
    log:
        "results/{scenario}/logs/metrics_{source}_seed{seed}.log",
    benchmark:
        "results/{scenario}/benchmarks/metrics_{source}_seed{seed}.tsv"
    wildcard_constraints:
        seed=r"\d+",
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
        target=scenario_param("target"),
        domain_seed=scenario_param("split", "seed"),
        image_size=scenario_param("image_size"),
        channels=scenario_param("channels"),
        metrics=scenario_param("metrics"),
        device=config["device"],
        code=code_hash("scripts/metrics.py"),
    script:
        "../scripts/metrics.py"
