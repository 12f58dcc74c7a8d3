# Metrics of every method (against truth, or held-out projection residuals) and figures.


rule evaluate:
    input:
        unpack(recon_inputs),
        benchmarks=stage_benchmarks,
        model="results/{dataset}/dinr/model.pt",
        sinogram="results/{dataset}/prepared/sinogram.h5",
        baselines=settings_file("baselines"),
    output:
        metrics="results/{dataset}/metrics.json",
        table="results/{dataset}/metrics.md",
    params:
        truth=truth_option,
        recon=recon_option,
        chunk=chunk_option,
    log:
        "logs/{dataset}/evaluate.log",
    resources:
        mem_mb=streaming_mem_mb,
        runtime=runtime_min("evaluate"),
    conda:
        "../../envs/dinr.yaml"
    shell:
        "dinr evaluate --dataset {wildcards.dataset:q} --sinogram {input.sinogram:q} {params.truth}"
        " --model {input.model:q} --recon {params.recon} --baselines {input.baselines:q}"
        " --benchmark {input.benchmarks:q}"
        " --out {output.metrics:q} --table {output.table:q} {params.chunk} 2> {log:q}"


rule figures:
    input:
        unpack(recon_inputs),
        metrics="results/{dataset}/metrics.json",
        model="results/{dataset}/dinr/model.pt",
    output:
        slices=report(
            "results/{dataset}/figures/slices.png",
            caption="../report/slices.rst",
            category="{dataset}",
            labels={"figure": "slices over time"},
        ),
        movie=report(
            "results/{dataset}/figures/movie.gif",
            caption="../report/movie.rst",
            category="{dataset}",
            labels={"figure": "movie of one slice"},
        ),
        metrics=report(
            "results/{dataset}/figures/metrics.png",
            caption="../report/metrics.rst",
            category="{dataset}",
            labels={"figure": "metrics"},
        ),
        training=report(
            "results/{dataset}/figures/training.png",
            caption="../report/training.rst",
            category="{dataset}",
            labels={"figure": "training curve"},
        ),
    params:
        truth=truth_option,
        recon=recon_option,
        outdir=lambda wc, output: str(Path(output.slices).parent),
    log:
        "logs/{dataset}/figures.log",
    resources:
        mem_mb=streaming_mem_mb,
        runtime=runtime_min("figures"),
    conda:
        "../../envs/dinr.yaml"
    shell:
        "dinr figures --metrics {input.metrics:q} --recon {params.recon} {params.truth}"
        " --model {input.model:q} --outdir {params.outdir:q} 2> {log:q}"
