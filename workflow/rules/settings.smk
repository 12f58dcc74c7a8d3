# Each dataset's resolved config sections, one JSON file per section and stage.


rule settings:
    output:
        "results/{dataset}/settings/{section}.json",
    params:
        settings=lambda wc: settings_record(wc.dataset, wc.section),
    log:
        "logs/{dataset}/settings_{section}.log",
    localrule: True
    conda:
        "../../envs/dinr.yaml"
    script:
        "../../scripts/write_settings.py"


# One baseline method's settings (common.smk's method_settings): its job reruns only when
# a key it reads changes, not when another method is added or retuned.
rule baseline_settings:
    output:
        "results/{dataset}/settings/baseline_{baseline}.json",
    params:
        settings=lambda wc: method_settings(wc.dataset, wc.baseline),
    log:
        "logs/{dataset}/settings_baseline_{baseline}.log",
    localrule: True
    conda:
        "../../envs/dinr.yaml"
    script:
        "../../scripts/write_settings.py"


# One rendering's request (common.smk's dataset_renderings): it reruns only when its own
# request changes.
rule rendering_settings:
    output:
        "results/{dataset}/settings/rendering_{rendering}.json",
    params:
        settings=lambda wc: settings_record(wc.dataset, f"rendering_{wc.rendering}"),
    log:
        "logs/{dataset}/settings_rendering_{rendering}.log",
    localrule: True
    conda:
        "../../envs/dinr.yaml"
    script:
        "../../scripts/write_settings.py"
