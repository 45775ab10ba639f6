# MagNet training on synthetic magnification pairs. Runs only when magnify.magnet.checkpoint names
# its output (models/magnet/magnet.pt) or when asked for: snakemake --cores 2 models/magnet/magnet.pt


rule magnet_train:
    input:
        code=code("magnet_train"),
    output:
        weights="models/magnet/magnet.pt",
        curve="models/magnet/curve.csv",
        info="models/magnet/train.json",
    params:
        magnet_train=config["magnet_train"],
    log:
        "logs/magnet_train.log",
    threads: config["magnet_train"]["threads"] or 2
    benchmark:
        "benchmarks/out/magnet_train.tsv"
    shell:
        "python -m merec magnet-train --output models/magnet --log {log}"
