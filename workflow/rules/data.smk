# Raw data: the embedded synthetic dataset, and the samples table and per-shard clip lists of any dataset.


rule synth:
    input:
        params=params_of("synth"),
        code=code("synth"),
    output:
        directory(SYNTH_ROOT),
    log:
        "logs/synth/synth.log",
    threads: CORES
    shell:
        "python -m merec synth --output {output} --log {log}"


checkpoint ingest:
    input:
        raw=raw_inputs,
        params=ingest_params,
        code=code("ingest"),
    output:
        samples="data/interim/{dataset}/samples.csv",
        classes="data/interim/{dataset}/classes.json",
        skipped="data/interim/{dataset}/skipped.csv",
        corrections="data/interim/{dataset}/corrections.csv",
        clips=expand("data/interim/{{dataset}}/clips/shard-{shard}.json", shard=SHARDS),
    wildcard_constraints:
        dataset="|".join(DECLARED),  # the clip datasets of spotting come from spot_clips
    log:
        "logs/{dataset}/ingest.log",
    threads: CORES  # hashes every frame of the dataset
    shell:
        "python -m merec ingest --dataset {wildcards.dataset} --output {output.samples} --log {log}"
