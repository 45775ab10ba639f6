# Frame strips for the HTML report (snakemake --report report.html): interpolated vs magnified frames
# of a few samples per dataset. The evaluate outputs are marked for the report in model.smk.


rule strips:
    input:
        samples="data/interim/{dataset}/samples.csv",
        classes="data/interim/{dataset}/classes.json",
        interpolated=shard_manifests("interpolate"),
        magnified=shard_manifests("magnify"),
        params=params_of("report"),
        code=code("strips"),
    output:
        report(
            directory("results/{dataset}/strips"),
            patterns=["{sample}.png"],
            caption="../report/strips.rst",
            category="Frames",
            subcategory="{dataset}",
            labels={"dataset": "{dataset}", "sample": "{sample}"},
        ),
    log:
        "logs/{dataset}/strips.log",
    shell:
        "python -m merec strips --samples {input.samples} --input {input.interpolated}"
        " --magnified {input.magnified} --output {output} --log {log}"
