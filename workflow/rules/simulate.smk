# Built-in deforming phantom, scanned by continuous rotation: raw counts + ground truth.


rule simulate:
    input:
        settings=settings_file("simulate"),
        geometry=settings_file("geometry"),
    output:
        raw="results/{dataset}/raw/scan.h5",
        truth="results/{dataset}/raw/truth.h5",
    log:
        "logs/{dataset}/simulate.log",
    benchmark:
        "results/{dataset}/benchmarks/simulate.tsv"
    resources:
        mem_mb=simulate_mem_mb,
        runtime=simulate_runtime_min,
    conda:
        "../../envs/dinr.yaml"
    shell:
        "dinr simulate --settings {input.settings:q} --geometry {input.geometry:q} --raw {output.raw:q}"
        " --truth {output.truth:q} 2> {log:q}"
