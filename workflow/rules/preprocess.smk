# Per-sample preprocessing: face alignment, temporal interpolation, magnification, flow features.


rule face:
    input:
        samples="data/interim/{dataset}/samples.csv",
        code=code("face"),
    output:
        directory("data/interim/{dataset}/face"),
    params:
        face=config["face"],
    log:
        "logs/{dataset}/face.log",
    threads: 2
    benchmark:
        "benchmarks/out/{dataset}/face.tsv"
    shell:
        "python -m merec face --samples {input.samples} --output {output} --log {log}"


rule interpolate:
    input:
        frames="data/interim/{dataset}/face",
        code=code("interpolate"),
    output:
        directory("data/interim/{dataset}/interpolate"),
    params:
        interpolate=config["interpolate"],
    log:
        "logs/{dataset}/interpolate.log",
    threads: 2
    benchmark:
        "benchmarks/out/{dataset}/interpolate.tsv"
    shell:
        "python -m merec interpolate --input {input.frames} --output {output} --log {log}"


rule magnify:
    input:
        frames="data/interim/{dataset}/interpolate",
        weights=magnet_weights,
        code=code("magnify"),
    output:
        directory("data/interim/{dataset}/magnify"),
    params:
        magnify=config["magnify"],
    log:
        "logs/{dataset}/magnify.log",
    threads: 2
    benchmark:
        "benchmarks/out/{dataset}/magnify.tsv"
    shell:
        "python -m merec magnify --input {input.frames} --output {output} --log {log}"


rule features:
    input:
        frames="data/interim/{dataset}/magnify",
        code=code("features"),
    output:
        directory("data/processed/{dataset}/features"),
    params:
        features=config["features"],
    log:
        "logs/{dataset}/features.log",
    threads: 2
    benchmark:
        "benchmarks/out/{dataset}/features.tsv"
    shell:
        "python -m merec features --input {input.frames} --output {output} --log {log}"


rule au_graph:
    input:
        samples="data/interim/{dataset}/samples.csv",
        code=code("au_graph"),
    output:
        directory("data/processed/{dataset}/au_graph"),
    params:
        au_graph=config["au_graph"],
    log:
        "logs/{dataset}/au_graph.log",
    shell:
        "python -m merec au-graph --samples {input.samples} --output {output} --log {log}"
