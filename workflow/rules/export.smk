# Renderings of the trained field at any instants, region, voxel size or plane; exports
# of volumes for viewers (OME-Zarr, ImageJ TIFF); movies of the middle slice and of the
# vertical cut through the axis.


rule render_request:
    input:
        model="results/{dataset}/dinr/model.pt",
        sinogram="results/{dataset}/prepared/sinogram.h5",
        settings="results/{dataset}/settings/rendering_{rendering}.json",
        render=settings_file("render"),
    output:
        "results/{dataset}/renderings/{rendering}/recon.h5",
    params:
        chunk=chunk_option,
        points=lambda wc: dataset_settings(wc.dataset, "render")["chunk"],
    log:
        "logs/{dataset}/render_{rendering}.log",
    benchmark:
        "results/{dataset}/benchmarks/render_{rendering}.tsv"
    threads: mpi_threads()
    resources:
        tasks=config["resources"]["train_tasks"],
        cpus_per_task=config["resources"]["train_cpus_per_task"],
        nodes=config["resources"]["train_nodes"],
        gpu=mpi_gpus(),
        tasks_per_gpu=mpi_tasks_per_gpu(),
        mpi=config["resources"]["mpi"],
        mem_mb=render_mem_mb,
        runtime=request_runtime_min,
    conda:
        "../../envs/dinr.yaml"
    shell:
        "{resources.mpi} -n {resources.tasks} dinr render-request --settings {input.settings:q}"
        " --name {wildcards.rendering:q} --model {input.model:q} --sinogram {input.sinogram:q}"
        " --chunk {params.points} --out {output:q} {params.chunk} 2> {log:q}"


rule export:
    input:
        volume="results/{dataset}/{volume}/recon.h5",
        settings=settings_file("render"),
    output:
        directory("results/{dataset}/{volume}/export"),
    params:
        formats=export_options,
    log:
        "logs/{dataset}/export_{volume}.log",
    benchmark:
        "results/{dataset}/benchmarks/export_{volume}.tsv"
    threads: 1
    resources:
        mem_mb=streaming_mem_mb,
        runtime=runtime_min("export"),
    conda:
        "../../envs/dinr.yaml"
    shell:
        "dinr export --volume {input.volume:q} {params.formats} 2> {log:q}"


rule movie:
    input:
        "results/{dataset}/renderings/movie_{plane}/recon.h5",
    output:
        report(
            "results/{dataset}/figures/movie_{plane}.gif",
            caption="../report/movie_plane.rst",
            category="{dataset}",
            labels={"figure": "movie of the {plane} plane"},
        ),
    params:
        title=lambda wc: {"axial": "middle slice", "vertical": "vertical cut through the axis"}[wc.plane],
    log:
        "logs/{dataset}/movie_{plane}.log",
    conda:
        "../../envs/dinr.yaml"
    shell:
        "dinr movie --volume {input:q} --title {params.title:q} --out {output:q} 2> {log:q}"
