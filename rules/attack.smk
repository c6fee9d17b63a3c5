# PGD adversarial examples of each source on the target's test images.


rule attack:
    input:
        source="results/{scenario}/models/source_{source}_seed{seed}.safetensors",
        source_info="results/{scenario}/models/source_{source}_seed{seed}.json",
        split="results/{scenario}/splits/target.safetensors",
        dataset=dataset_marker("target"),
    output:
        "results/{scenario}/attacks/{source}_seed{seed}.safetensors",
    log:
        "results/{scenario}/logs/attack_{source}_seed{seed}.log",
    benchmark:
        "results/{scenario}/benchmarks/attack_{source}_seed{seed}.tsv"
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
        attack=scenario_param("attack"),
        device=config["device"],
        code=code_hash("scripts/attack.py"),
    script:
        "../scripts/attack.py"
