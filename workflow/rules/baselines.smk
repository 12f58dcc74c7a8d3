# Baseline reconstructions on the same data: static FBP (all views) and sliding-window
# FBP (each frame's half-turn of views), at the frame times DINR is rendered at.


rule baseline:
    input:
        unpack(frame_times_input),
        sinogram="results/{dataset}/prepared/sinogram.h5",
        settings="results/{dataset}/settings/baseline_{baseline}.json",
    output:
        "results/{dataset}/{baseline}/recon.h5",
    params:
        frame_times=frame_times_option,
        frames=frame_count,
        chunk=chunk_option,
    log:
        "logs/{dataset}/{baseline}.log",
    benchmark:
        "results/{dataset}/benchmarks/{baseline}.tsv"
    threads: baseline_threads
    resources:
        mem_mb=baseline_mem_mb,
        runtime=baseline_runtime_min,
    conda:
        "../../envs/tomopy.yaml"
    shell:
        "dinr baseline --settings {input.settings:q} --method {wildcards.baseline} --sinogram {input.sinogram:q}"
        " {params.frame_times} --frames {params.frames} --out {output:q} {params.chunk} --threads {threads} 2> {log:q}"
