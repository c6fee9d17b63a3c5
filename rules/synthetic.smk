# Section 4.1 / Figure 2: data -> reference model -> sweep (one job per seed) -> summary -> figure.

SYN = BLOCKS["synthetic"]["synthetic"]


rule synthetic_data:
    output:
        data="results/synthetic/data.safetensors",
        info="results/synthetic/data.json",
    log:
        "results/synthetic/logs/data.log",
    benchmark:
        "results/synthetic/benchmarks/data.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        seed=SYN["seed"],
        data=SYN["data"],
        code=code_hash("scripts/synthetic_data.py"),
    script:
        "../scripts/synthetic_data.py"


rule synthetic_target:
    input:
        data=rules.synthetic_data.output.data,
    output:
        model="results/synthetic/target.safetensors",
        info="results/synthetic/target.json",
    log:
        "results/synthetic/logs/target.log",
    benchmark:
        "results/synthetic/benchmarks/target.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        seed=SYN["seed"],
        target=SYN["target"],
        code=code_hash("scripts/synthetic_target.py"),
    script:
        "../scripts/synthetic_target.py"


rule synthetic_sweep:
    input:
        data=rules.synthetic_data.output.data,
        model=rules.synthetic_target.output.model,
        info=rules.synthetic_target.output.info,
    output:
        "results/synthetic/sweep/seed{seed}.csv",
    log:
        "results/synthetic/logs/sweep_seed{seed}.log",
    benchmark:
        "results/synthetic/benchmarks/sweep_seed{seed}.tsv"
    conda:
        "../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        seed=lambda w: int(w.seed),
        t=SYN["sweep"]["t"],
        half_range=SYN["sweep"]["perturbation_half_range"],
        attack=SYN["attack"],
        code=code_hash("scripts/synthetic_sweep.py"),
    script:
        "../scripts/synthetic_sweep.py"


rule synthetic_summary:
    input:
        expand("results/synthetic/sweep/seed{seed}.csv", seed=SYN["sweep"]["seeds"]),
    output:
        sweep=report(
            "results/synthetic/sweep.csv",
            caption="../report/synthetic/sweep.rst",
            category="Synthetic (Section 4.1)",
        ),
        summary="results/synthetic/summary.csv",
    log:
        "results/synthetic/logs/summary.log",
    benchmark:
        "results/synthetic/benchmarks/summary.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        code=code_hash("scripts/synthetic_summary.py"),
    script:
        "../scripts/synthetic_summary.py"


rule synthetic_figure:
    input:
        summary=rules.synthetic_summary.output.summary,
    output:
        png=report(
            "results/synthetic/figure2.png",
            caption="../report/synthetic/figure2.rst",
            category="Synthetic (Section 4.1)",
        ),
        pdf="results/synthetic/figure2.pdf",
    log:
        "results/synthetic/logs/figure.log",
    benchmark:
        "results/synthetic/benchmarks/figure.tsv"
    localrule: True
    conda:
        "../envs/plot.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        code=code_hash("scripts/synthetic_figure.py"),
    script:
        "../scripts/synthetic_figure.py"
