# Raw data: the embedded synthetic dataset and the normalised samples table of any dataset.


rule synth:
    input:
        code=code("synth"),
    output:
        directory(SYNTH_ROOT),
    params:
        synth=config["synth"],
    log:
        "logs/synth/synth.log",
    shell:
        "python -m merec synth --output {output} --log {log}"


checkpoint ingest:
    input:
        raw=raw_inputs,
        code=code("ingest"),
    output:
        samples="data/interim/{dataset}/samples.csv",
        classes="data/interim/{dataset}/classes.json",
        skipped="data/interim/{dataset}/skipped.csv",
    params:
        dataset=lambda wildcards: config["datasets"][wildcards.dataset],
        ingest=config["ingest"],
    log:
        "logs/{dataset}/ingest.log",
    shell:
        "python -m merec ingest --dataset {wildcards.dataset} --output {output.samples} --log {log}"
