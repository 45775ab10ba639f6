# Spotting in long videos (docs/spotting.md): the embedded long-video dataset, ingest, per-shard
# per-frame motion features, curves (baseline, or the learned spotter per LOSO fold and seed), then
# intervals and MEGC metrics; then spot-then-recognize: the spotted micro-expressions and the annotated
# ones become the clip dataset {lv}-spotted, which the face ... train rules (preprocess.smk, model.smk)
# run on like any dataset, and STRS scores the result. Targets: results/{lv}/spotting/spot_metrics.json,
# results/{lv}/spotting/strs.json; not part of rule all.


rule synth_lv:
    input:
        params=params_of("synth_lv"),
        code=code("synth_lv"),
    output:
        directory(SYNTH_LV_ROOT),
    log:
        "logs/synth_lv/synth_lv.log",
    threads: CORES
    shell:
        "python -m merec synth-lv --output {output} --log {log}"


checkpoint ingest_lv:
    input:
        raw=lv_raw_inputs,
        params=lv_ingest_params,
        code=code("ingest_lv"),
    output:
        videos="data/interim/{lv}/videos.csv",
        intervals="data/interim/{lv}/intervals.csv",
        skipped="data/interim/{lv}/skipped.csv",
        corrections="data/interim/{lv}/corrections.csv",
        lists=expand("data/interim/{{lv}}/videos/shard-{shard}.json", shard=SHARDS),
    log:
        "logs/{lv}/ingest_lv.log",
    threads: CORES  # hashes every frame
    shell:
        "python -m merec ingest-lv --dataset {wildcards.lv} --output {output.videos} --log {log}"


rule spot_features:
    input:
        videos="data/interim/{lv}/videos/shard-{shard}.json",
        table="data/interim/{lv}/videos.csv",
        params=params_of("spot_features"),
        code=code("spot_features"),
    output:
        features=directory("data/interim/{lv}/spot_features/shard-{shard}"),
        manifest="data/interim/{lv}/spot_features/shard-{shard}.json",
    log:
        "logs/{lv}/spot_features/shard-{shard}.log",
    threads: SHARD_THREADS
    shell:
        "python -m merec spot-features --input {input.videos} --videos {input.table} --output {output.manifest} "
        "--log {log}"


rule spot_baseline:
    input:
        videos="data/interim/{lv}/videos.csv",
        features=lv_shard_manifests("spot_features"),
        params=params_of(*SPOT_SCORE_PARAMS),
        code=code("spot_score"),
    output:
        "results/{lv}/spotting/scores/baseline/curves.npz",
    log:
        "logs/{lv}/spot_score.log",
    shell:
        "python -m merec spot-score --videos {input.videos} --features {input.features} "
        "--output results/{wildcards.lv}/spotting/scores/baseline --log {log}"


rule spot_learned:
    input:
        videos="data/interim/{lv}/videos.csv",
        features=lv_shard_manifests("spot_features"),
        params=params_of(*SPOT_SCORE_PARAMS),
        code=code("spot_score"),
    output:
        "results/{lv}/spotting/scores/learned/seed-{seed}/{fold}/curves.npz",
    log:
        "logs/{lv}/spot_score/seed-{seed}/{fold}.log",
    threads: CORES
    resources:
        **spot_resources(),
    shell:
        "python -m merec spot-score --videos {input.videos} --features {input.features} "
        "--output results/{wildcards.lv}/spotting/scores/learned --fold {wildcards.fold} --seed {wildcards.seed} "
        "--log {log}"


# The learned spotter on every video (spot.learned.seeds), for a bundle (merec export): not in rule all.
rule spot_train:
    input:
        videos="data/interim/{lv}/videos.csv",
        features=lv_shard_manifests("spot_features"),
        params=params_of("spot.learned"),
        code=code("spot_train"),
    output:
        directory("results/{lv}/spotting/spotter"),
    log:
        "logs/{lv}/spot_train.log",
    threads: CORES
    resources:
        **spot_resources(),
    shell:
        "python -m merec spot-train --videos {input.videos} --features {input.features} --output {output} --log {log}"


rule spot_evaluate:
    input:
        videos="data/interim/{lv}/videos.csv",
        intervals="data/interim/{lv}/intervals.csv",
        curves=spot_curves,
        params=params_of(*SPOT_EVALUATE_PARAMS),
        code=code("spot_evaluate"),
    output:
        metrics="results/{lv}/spotting/spot_metrics.json",
        intervals="results/{lv}/spotting/intervals.csv",
        curves="results/{lv}/spotting/curves.csv",
        plot=report("results/{lv}/spotting/curves.png", caption="../report/spotting.rst", category="Spotting"),
    log:
        "logs/{lv}/spot_evaluate.log",
    shell:
        "python -m merec spot-evaluate --videos {input.videos} --curves {input.curves} "
        "--metrics {output.metrics} --dataset {wildcards.lv} --log {log}"


checkpoint spot_clips:
    input:
        videos="data/interim/{lv}/videos.csv",
        intervals="data/interim/{lv}/intervals.csv",
        spotted="results/{lv}/spotting/intervals.csv",
        params=lv_ingest_params,
        code=code("spot_clips"),
    output:
        samples="data/interim/{lv}-spotted/samples.csv",
        classes="data/interim/{lv}-spotted/classes.json",
        skipped="data/interim/{lv}-spotted/skipped.csv",
        clips=expand("data/interim/{{lv}}-spotted/clips/shard-{shard}.json", shard=SHARDS),
    log:
        "logs/{lv}/spot_clips.log",
    threads: CORES  # hashes every frame of the clips
    shell:
        "python -m merec spot-clips --dataset {wildcards.lv} --videos {input.videos} --spotted {input.spotted} "
        "--output {output.samples} --log {log}"


rule spot_strs:
    input:
        videos="data/interim/{lv}/videos.csv",
        intervals="data/interim/{lv}/intervals.csv",
        spotted="results/{lv}/spotting/intervals.csv",
        samples="data/interim/{lv}-spotted/samples.csv",
        classes="data/interim/{lv}-spotted/classes.json",
        folds=spotted_fold_dirs,
        params=params_of("train.seeds"),
        code=code("spot_strs"),
    output:
        "results/{lv}/spotting/strs.json",
    log:
        "logs/{lv}/spot_strs.log",
    shell:
        "python -m merec spot-strs --videos {input.videos} --spotted {input.spotted} --samples {input.samples} "
        "--folds {input.folds} --output {output} --dataset {wildcards.lv} --log {log}"
