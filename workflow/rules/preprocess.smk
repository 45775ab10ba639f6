# Per-sample preprocessing, one job per shard: face alignment, temporal interpolation, magnification,
# flow features. Each job writes data/.../<stage>/shard-<k>/ and its manifest shard-<k>.json.


rule face:
    input:
        clips="data/interim/{dataset}/clips/shard-{shard}.json",
        params=params_of("face"),
        code=code("face"),
    output:
        frames=directory("data/interim/{dataset}/face/shard-{shard}"),
        manifest="data/interim/{dataset}/face/shard-{shard}.json",
    log:
        "logs/{dataset}/face/shard-{shard}.log",
    threads: SHARD_THREADS
    shell:
        "python -m merec face --input {input.clips} --output {output.manifest} --log {log}"


rule interpolate:
    input:
        frames="data/interim/{dataset}/face/shard-{shard}.json",
        params=params_of("interpolate"),
        code=code("interpolate"),
    output:
        frames=directory("data/interim/{dataset}/interpolate/shard-{shard}"),
        manifest="data/interim/{dataset}/interpolate/shard-{shard}.json",
    log:
        "logs/{dataset}/interpolate/shard-{shard}.log",
    threads: SHARD_THREADS
    shell:
        "python -m merec interpolate --input {input.frames} --output {output.manifest} --log {log}"


rule magnify:
    input:
        frames="data/interim/{dataset}/interpolate/shard-{shard}.json",
        weights=magnet_weights,
        params=params_of("magnify"),
        code=code("magnify"),
    output:
        frames=directory("data/interim/{dataset}/magnify/shard-{shard}"),
        manifest="data/interim/{dataset}/magnify/shard-{shard}.json",
    log:
        "logs/{dataset}/magnify/shard-{shard}.log",
    threads: SHARD_THREADS
    shell:
        "python -m merec magnify --input {input.frames} --output {output.manifest} --log {log}"


rule features:
    input:
        frames="data/interim/{dataset}/magnify/shard-{shard}.json",
        params=params_of("features"),
        code=code("features"),
    output:
        features=directory("data/processed/{dataset}/features/shard-{shard}"),
        manifest="data/processed/{dataset}/features/shard-{shard}.json",
    log:
        "logs/{dataset}/features/shard-{shard}.log",
    threads: SHARD_THREADS
    shell:
        "python -m merec features --input {input.frames} --output {output.manifest} --log {log}"


rule au_graph:
    input:
        samples="data/interim/{dataset}/samples.csv",
        params=params_of("au_graph"),
        code=code("au_graph"),
    output:
        directory("data/processed/{dataset}/au_graph"),
    log:
        "logs/{dataset}/au_graph.log",
    shell:
        "python -m merec au-graph --samples {input.samples} --output {output} --log {log}"
