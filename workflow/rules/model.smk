# Leave-one-subject-out training (one job per fold and seed of train.seeds) and pooled evaluation;
# train_all: the recogniser fitted on every subject (results/{dataset}/model, what `merec export` ships).


rule train:
    input:
        samples="data/interim/{dataset}/samples.csv",
        classes="data/interim/{dataset}/classes.json",
        features=shard_manifests("features", "processed"),
        au_graph="data/processed/{dataset}/au_graph",
        pretrained=pretrained_weights,
        params=params_of("train"),
        code=code("train"),
    output:
        directory("results/{dataset}/folds/seed-{seed}/{fold}"),
    log:
        "logs/{dataset}/train/{fold}.seed-{seed}.log",
    threads: 1  # one thread per run, whatever the machine: its numbers never depend on the cores
    resources:
        **train_resources(),
    shell:
        "python -m merec train --samples {input.samples} --features {input.features} --au-graph {input.au_graph}"
        " --fold {wildcards.fold} --seed {wildcards.seed} --output {output} --log {log}"


rule train_all:
    input:
        samples="data/interim/{dataset}/samples.csv",
        classes="data/interim/{dataset}/classes.json",
        features=shard_manifests("features", "processed"),
        au_graph="data/processed/{dataset}/au_graph",
        pretrained=pretrained_weights,
        params=params_of("train"),
        code=code("train"),
    output:
        directory("results/{dataset}/model"),
    log:
        "logs/{dataset}/train_all.log",
    threads: 1  # as a fold job: its numbers never depend on the cores
    resources:
        **train_resources(),
    shell:
        "python -m merec train --samples {input.samples} --features {input.features} --au-graph {input.au_graph}"
        " --fold all-subjects --seed all --output {output} --log {log}"


rule evaluate:
    input:
        samples="data/interim/{dataset}/samples.csv",
        classes="data/interim/{dataset}/classes.json",
        folds=fold_dirs,
        params=params_of("evaluate", "train.seeds"),
        code=code("evaluate"),
    output:
        loso=reported("results/{dataset}/loso.csv", "loso", "Metrics", table="per-fold scores (loso.csv)"),
        metrics=reported("results/{dataset}/metrics.json", "metrics", "Metrics", table="pooled metrics (metrics.json)"),
        per_class=reported(
            "results/{dataset}/per_class.csv", "per_class", "Metrics", table="per-class scores (per_class.csv)"
        ),
        predictions="results/{dataset}/predictions.csv",
        learning_curves="results/{dataset}/learning_curves.csv",
        confusion=reported("results/{dataset}/confusion.png", "confusion", "Plots", figure="confusion matrix"),
        confusion_plot="results/{dataset}/plots/confusion.csv",
        learning_curve=reported(
            "results/{dataset}/learning_curve.png", "learning_curve", "Plots", figure="learning curve"
        ),
        learning_curve_plot="results/{dataset}/plots/learning_curve.csv",
    log:
        "logs/{dataset}/evaluate.log",
    shell:
        "python -m merec evaluate --samples {input.samples} --folds {input.folds} --metrics {output.metrics}"
        " --dataset {wildcards.dataset} --log {log}"
