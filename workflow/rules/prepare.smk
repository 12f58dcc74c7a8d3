# Raw Data Exchange counts -> canonical sinogram (flat/dark correction, -log, centre).


rule prepare:
    input:
        raw=raw_scan,
        settings=settings_file("prepare"),
    output:
        "results/{dataset}/prepared/sinogram.h5",
    log:
        "logs/{dataset}/prepare.log",
    benchmark:
        "results/{dataset}/benchmarks/prepare.tsv"
    conda:
        "../../envs/dinr.yaml"
    shell:
        "dinr prepare --settings {input.settings} --raw {input.raw} --out {output} 2> {log}"
