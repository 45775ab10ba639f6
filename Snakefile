# merec: raw frames -> face -> interpolate -> magnify -> features (+ AU graph) -> LOSO train -> evaluate.
#   snakemake --cores 8 results/synth/loso.csv
# Parameters: params.yaml (each rule passes exactly its own section). Cluster: --profile workflow/profiles/slurm
from snakemake.utils import min_version

min_version("9.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/magnet.smk"


rule all:
    input:
        expand("results/{dataset}/loso.csv", dataset=DATASETS),
    default_target: True
