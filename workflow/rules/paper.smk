# The paper's figures and tables from one target (`make paper`, with config/paper.yaml):
# every scan's slices over time, a table of every method on every scan (Markdown and
# LaTeX), DINR's quality against wall time beside the baselines', the scaling and memory
# figures from the benchmarks, and a movie. The first dataset of the config is the one
# whose time to quality and movie are shown; every dataset needs a ground truth.


rule paper:
    input:
        "results/paper/table.md",
        "results/paper/time_to_quality.png",
        "results/paper/movie.gif",
        expand("results/paper/slices/{dataset}.png", dataset=list(config["datasets"])),


rule paper_tables:
    input:
        metrics=expand("results/{dataset}/metrics.json", dataset=list(config["datasets"])),
        distributed="bench/results/distributed.json",
        memory="bench/results/memory.json",
        scan_size="bench/results/size.json",
    output:
        table="results/paper/table.md",
        latex="results/paper/table.tex",
        scaling="results/paper/scaling.png",
        memory="results/paper/memory.png",
        scan_size="results/paper/size.png",
    log:
        "logs/paper/tables.log",
    conda:
        "../../envs/dinr.yaml"
    shell:
        "dinr paper --metrics {input.metrics:q} --distributed {input.distributed:q} --memory {input.memory:q}"
        " --size {input.scan_size:q}"
        " --table {output.table:q} --latex {output.latex:q} --scaling {output.scaling:q}"
        " --memory-figure {output.memory:q} --size-figure {output.scan_size:q} 2> {log:q}"


rule paper_slices:
    input:
        "results/{dataset}/figures/slices.png",
    output:
        "results/paper/slices/{dataset}.png",
    log:
        "logs/paper/slices_{dataset}.log",
    conda:
        "../../envs/dinr.yaml"
    shell:
        "cp {input:q} {output:q} 2> {log:q}"


rule paper_showcase:
    input:
        movie=lambda wc: f"results/{paper_showcase()}/figures/movie.gif",
        time_to_quality=lambda wc: f"results/{paper_showcase()}/time_to_quality/quality.png",
    output:
        movie="results/paper/movie.gif",
        time_to_quality="results/paper/time_to_quality.png",
    log:
        "logs/paper/showcase.log",
    conda:
        "../../envs/dinr.yaml"
    shell:
        "(cp {input.movie:q} {output.movie:q} && cp {input.time_to_quality:q} {output.time_to_quality:q}) 2> {log:q}"


# A second training run of the dataset with the same settings, keeping snapshots of the
# field, so that the pipeline's own training run stays as it is.
rule train_with_snapshots:
    input:
        sinogram="results/{dataset}/prepared/sinogram.h5",
        settings=settings_file("train"),
    output:
        model="results/{dataset}/time_to_quality/model.pt",
        snapshots=directory("results/{dataset}/time_to_quality/snapshots"),
    params:
        checkpoint="results/{dataset}/time_to_quality/checkpoint.pt",
        every=250,
    log:
        "logs/{dataset}/train_with_snapshots.log",
    threads: mpi_threads()
    resources:
        tasks=config["resources"]["train_tasks"],
        cpus_per_task=config["resources"]["train_cpus_per_task"],
        nodes=config["resources"]["train_nodes"],
        gpu=mpi_gpus(),
        tasks_per_gpu=mpi_tasks_per_gpu(),
        mpi=config["resources"]["mpi"],
        mem_mb=train_mem_mb,
        runtime=train_runtime_min,
    conda:
        "../../envs/dinr.yaml"
    shell:
        "{resources.mpi} -n {resources.tasks} dinr train --settings {input.settings:q}"
        " --sinogram {input.sinogram:q} --checkpoint {params.checkpoint:q} --model {output.model:q}"
        " --snapshots {output.snapshots:q} --snapshot-every {params.every} --restart-on-other-settings 2> {log:q}"


rule time_to_quality:
    input:
        model="results/{dataset}/time_to_quality/model.pt",
        snapshots="results/{dataset}/time_to_quality/snapshots",
        sinogram="results/{dataset}/prepared/sinogram.h5",
        truth=truth_input,
        metrics="results/{dataset}/metrics.json",
        settings=settings_file("render"),
    output:
        json="results/{dataset}/time_to_quality/quality.json",
        figure="results/{dataset}/time_to_quality/quality.png",
    log:
        "logs/{dataset}/time_to_quality.log",
    conda:
        "../../envs/dinr.yaml"
    shell:
        "dinr time-to-quality --settings {input.settings:q} --model {input.model:q} --snapshots {input.snapshots:q}"
        " --sinogram {input.sinogram:q} --truth {input.truth:q} --metrics {input.metrics:q}"
        " --out {output.json:q} --figure {output.figure:q} 2> {log:q}"
