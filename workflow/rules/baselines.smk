# FBP baselines on the same data: static (all views) and sliding half-turn windows.


rule fbp:
    input:
        unpack(lambda wc: {"truth": truth_input(wc)}),
        sinogram="results/{dataset}/prepared/sinogram.h5",
        settings=settings_file("baselines"),
    output:
        "results/{dataset}/fbp_{mode}/recon.h5",
    params:
        truth=truth_option,
        frames=lambda wc: dataset_settings(wc.dataset, "render")["frames"],
    log:
        "logs/{dataset}/fbp_{mode}.log",
    benchmark:
        "results/{dataset}/benchmarks/fbp_{mode}.tsv"
    conda:
        "../../envs/tomopy.yaml"
    shell:
        "dinr fbp --settings {input.settings} --sinogram {input.sinogram} --mode {wildcards.mode}"
        " {params.truth} --frames {params.frames} --out {output} 2> {log}"
