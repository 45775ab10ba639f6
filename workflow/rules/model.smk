# Leave-one-subject-out training (one job per fold and seed of train.seeds) and pooled evaluation.


rule train:
    input:
        samples="data/interim/{dataset}/samples.csv",
        classes="data/interim/{dataset}/classes.json",
        features="data/processed/{dataset}/features",
        au_graph="data/processed/{dataset}/au_graph",
        code=code("train"),
    output:
        directory("results/{dataset}/folds/seed-{seed}/{fold}"),
    params:
        train=config["train"],
    log:
        "logs/{dataset}/train/{fold}.seed-{seed}.log",
    threads: 1
    resources:
        **train_resources(),
    benchmark:
        "benchmarks/out/{dataset}/train/{fold}.seed-{seed}.tsv"
    shell:
        "python -m merec train --samples {input.samples} --features {input.features} --au-graph {input.au_graph}"
        " --output results/{wildcards.dataset}/folds --fold {wildcards.fold} --seed {wildcards.seed} --log {log}"


rule evaluate:
    input:
        samples="data/interim/{dataset}/samples.csv",
        classes="data/interim/{dataset}/classes.json",
        folds=fold_dirs,
        code=code("evaluate"),
    output:
        loso=report(
            "results/{dataset}/loso.csv",
            caption="../report/loso.rst",
            category="Metrics",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "per-fold scores (loso.csv)"},
        ),
        metrics=report(
            "results/{dataset}/metrics.json",
            caption="../report/metrics.rst",
            category="Metrics",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "pooled metrics (metrics.json)"},
        ),
        per_class=report(
            "results/{dataset}/per_class.csv",
            caption="../report/per_class.rst",
            category="Metrics",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "table": "per-class scores (per_class.csv)"},
        ),
        predictions="results/{dataset}/predictions.csv",
        learning_curves="results/{dataset}/learning_curves.csv",
        confusion=report(
            "results/{dataset}/confusion.png",
            caption="../report/confusion.rst",
            category="Plots",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "confusion matrix"},
        ),
        confusion_plot="results/{dataset}/plots/confusion.csv",
        learning_curve=report(
            "results/{dataset}/learning_curve.png",
            caption="../report/learning_curve.rst",
            category="Plots",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "figure": "learning curve"},
        ),
        learning_curve_plot="results/{dataset}/plots/learning_curve.csv",
    params:
        evaluate=config["evaluate"],
    log:
        "logs/{dataset}/evaluate.log",
    shell:
        "python -m merec evaluate --samples {input.samples} --folds results/{wildcards.dataset}/folds"
        " --output results/{wildcards.dataset} --dataset {wildcards.dataset} --log {log}"
