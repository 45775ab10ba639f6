# merec: raw frames -> face -> interpolate -> magnify -> features (+ AU graph) -> LOSO train -> evaluate.
#   snakemake --cores 8 results/synth/loso.csv
#   snakemake --cores 8 && snakemake --report report.html   # everything, then the HTML report
# Parameters: params.yaml (each rule passes exactly its own section). Cluster: --profile workflow/profiles/slurm
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/magnet.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        expand("results/{dataset}/loso.csv", dataset=DATASETS),
        expand("results/{dataset}/strips", dataset=DATASETS),
    default_target: True
