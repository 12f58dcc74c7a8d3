# Raw scan (Data Exchange HDF5 or TIFF stack) -> canonical raw counts -> canonical sinogram.


rule convert:
    input:
        raw=raw_scan,
        settings=settings_file("convert"),
    output:
        "results/{dataset}/raw/canonical.h5",
    params:
        chunk=chunk_option,
    log:
        "logs/{dataset}/convert.log",
    benchmark:
        "results/{dataset}/benchmarks/convert.tsv"
    resources:
        mem_mb=streaming_mem_mb,
        runtime=runtime_min("convert"),
    conda:
        "../../envs/dinr.yaml"
    shell:
        "dinr convert --settings {input.settings:q} --raw {input.raw:q} --out {output:q} {params.chunk} 2> {log:q}"


rule prepare:
    input:
        raw="results/{dataset}/raw/canonical.h5",
        settings=settings_file("prepare"),
        geometry=settings_file("geometry"),
    output:
        "results/{dataset}/prepared/sinogram.h5",
    params:
        chunk=chunk_option,
    log:
        "logs/{dataset}/prepare.log",
    benchmark:
        "results/{dataset}/benchmarks/prepare.tsv"
    resources:
        mem_mb=streaming_mem_mb,
        runtime=runtime_min("prepare"),
    conda:
        "../../envs/dinr.yaml"
    shell:
        "dinr prepare --settings {input.settings:q} --geometry {input.geometry:q} --raw {input.raw:q}"
        " --out {output:q} {params.chunk} 2> {log:q}"
