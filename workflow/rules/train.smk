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
    threads: config["resources"]["train_tasks"]
    resources:
        tasks=config["resources"]["train_tasks"],
        mpi=config["resources"]["mpi"],
        mem_mb=train_mem_mb,
    conda:
        "../../envs/dinr.yaml"
    shell:
        "{resources.mpi} -n {resources.tasks} dinr train --settings {input.settings}"
        " --sinogram {input.sinogram} --checkpoint {params.checkpoint} --model {output.model} 2> {log}"


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
    threads: config["resources"]["train_tasks"]
    resources:
        tasks=config["resources"]["train_tasks"],
        mpi=config["resources"]["mpi"],
        mem_mb=render_mem_mb,
    conda:
        "../../envs/dinr.yaml"
    shell:
        "{resources.mpi} -n {resources.tasks} dinr render --settings {input.settings} --model {input.model}"
        " --sinogram {input.sinogram} {params.frame_times} --out {output} 2> {log}"
