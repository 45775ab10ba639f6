# MagNet training on synthetic magnification pairs. Its output is the checkpoint merec ships
# (merec/weights/magnet.pt, recorded in dvc.lock): about 90 minutes on one CPU thread, so Snakemake
# retrains only when asked (`snakemake --cores 2 --forcerun magnet_train merec/weights/magnet.pt`),
# or when the checkpoint is missing; `dvc repro` retrains when the training code or its params change.


rule magnet_train:
    input:
        params=ancient(params_of("magnet_train")),
        code=[ancient(path) for path in code("magnet_train")],
    output:
        weights="merec/weights/magnet.pt",
        curve="merec/weights/magnet_curve.csv",
        record="merec/weights/magnet_train.json",
    log:
        "logs/magnet_train.log",
    threads: 1  # the shipped checkpoint was trained with one torch thread (bit-identical only for the same count)
    shell:
        "python -m merec magnet-train --output {output.weights} --log {log}"
