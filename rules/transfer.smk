# Knowledge transfer: a linear probe on each frozen source's penultimate features, on the target task.


rule probe:
    input:
        source="results/{scenario}/models/source_{source}_seed{seed}.safetensors",
        source_info="results/{scenario}/models/source_{source}_seed{seed}.json",
        split="results/{scenario}/splits/target.safetensors",
        dataset=dataset_marker("target"),
    output:
        "results/{scenario}/probes/{source}_seed{seed}.json",
    log:
        "results/{scenario}/logs/probe_{source}_seed{seed}.log",
    benchmark:
        "results/{scenario}/benchmarks/probe_{source}_seed{seed}.tsv"
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
        probe=scenario_param("probe"),
        device=config["device"],
        code=code_hash("scripts/probe.py"),
    script:
        "../scripts/probe.py"
