# DINR: distributed training over MPI ranks, then rendering at the frame times.


rule train:
    input:
        sinogram="results/{dataset}/prepared/sinogram.h5",
        settings=settings_file("train"),
    output:
        model="results/{dataset}/dinr/model.pt",
    params:
        checkpoint="results/{dataset}/dinr/checkpoint.pt",
    log:
        "logs/{dataset}/train.log",
    benchmark:
        "results/{dataset}/benchmarks/train.tsv"
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
        " --restart-on-other-settings 2> {log:q}"


rule render:
    input:
        unpack(frame_times_input),
        model="results/{dataset}/dinr/model.pt",
        sinogram="results/{dataset}/prepared/sinogram.h5",
        settings=settings_file("render"),
    output:
        "results/{dataset}/dinr/recon.h5",
    params:
        frame_times=frame_times_option,
    log:
        "logs/{dataset}/render.log",
    benchmark:
        "results/{dataset}/benchmarks/render.tsv"
    threads: mpi_threads()
    resources:
        tasks=config["resources"]["train_tasks"],
        cpus_per_task=config["resources"]["train_cpus_per_task"],
        nodes=config["resources"]["train_nodes"],
        gpu=mpi_gpus(),
        tasks_per_gpu=mpi_tasks_per_gpu(),
        mpi=config["resources"]["mpi"],
        mem_mb=render_mem_mb,
        runtime=render_runtime_min,
    conda:
        "../../envs/dinr.yaml"
    shell:
        "{resources.mpi} -n {resources.tasks} dinr render --settings {input.settings:q} --model {input.model:q}"
        " --sinogram {input.sinogram:q} {params.frame_times} --out {output:q} 2> {log:q}"
