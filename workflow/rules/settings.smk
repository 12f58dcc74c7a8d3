# Each dataset's resolved config sections, one JSON file per section and stage.


rule settings:
    output:
        "results/{dataset}/settings/{section}.json",
    params:
        settings=lambda wc: dataset_settings(wc.dataset, wc.section),
    log:
        "logs/{dataset}/settings_{section}.log",
    localrule: True
    conda:
        "../../envs/dinr.yaml"
    script:
        "../../scripts/write_settings.py"
