#!/usr/bin/env bash
# merec quickstart: creates .venv when needed, then runs the default pipeline or the tests.
#   ./quickstart.sh          run the pipeline on the embedded synthetic dataset (Snakemake), fit the exportable model
#   ./quickstart.sh test     run the test suite
# Environment: PYTHON (interpreter for the venv, default python3.11 or python3),
#              MEREC_TORCH (torch requirement installed first, default torch==2.13.0),
#              CORES (Snakemake cores, default all).
set -euo pipefail
cd "$(dirname "$0")"

python_bin=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
    echo "merec: creating .venv with $python_bin" >&2
    "$python_bin" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
export DVC_NO_ANALYTICS=1

stamp=.venv/.merec-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "merec: installing dependencies into .venv (about a minute)" >&2
    python -m pip install --quiet --upgrade pip
    # torch first: a range alone can pull a multi-GB CUDA build where a CPU wheel would do
    python -c "import torch" 2>/dev/null || python -m pip install --quiet "${MEREC_TORCH:-torch==2.13.0}"
    python -m pip install --quiet -e ".[dev]"
    touch "$stamp"
fi

case "${1:-run}" in
    run)
        # rule all (LOSO metrics and frame strips of every dataset) and the recogniser on every subject (train_all)
        snakemake --cores "${CORES:-all}" all results/synth/model
        python -c "import json; m = json.load(open('results/synth/metrics.json')); ci = m.get('uf1_ci95'); print('pooled LOSO: UF1 {uf1:.3f}  UAR {uar:.3f}  accuracy {accuracy:.3f}  ({n_samples} samples, {n_folds} folds)'.format(**m) + (f'; UF1 95% interval {ci[0]:.3f}-{ci[1]:.3f} (subject bootstrap)' if ci else ''))"
        echo "metrics written to results/synth/metrics.json"
        echo "a bundle to run on your own videos: merec export --run results/synth --output model.merec (docs/predict.md)"
        ;;
    test)
        shift || true
        python -m pytest -q -n 2 --dist loadscope --durations=15 "$@"   # a module's tests on one worker: its fixtures built once
        ;;
    *)
        echo "usage: ./quickstart.sh [run|test [pytest args]]" >&2
        exit 2
        ;;
esac
