"""Numbers in the README come from result files a script wrote: the test keeps the two in step."""

from __future__ import annotations

import json
import re
import sys

import yaml

from merec.config import checked_section
from tests.helpers import REPO


def test_the_readme_quotes_the_stage_cost_benchmark() -> None:
    data = json.loads((REPO / "benchmarks/results/stage_costs.json").read_text())
    readme = (REPO / "README.md").read_text()
    bound = sum(row["estimate_s"] for row in data["stages"] if row["estimate_s"])
    speed = readme[readme.index("**Speed**") :].split("## Running")[0]
    assert f"**{data['total_s']:.0f} s**" in speed and f"kernel-bound **{bound:.0f} s**" in speed
    assert data["date"] in speed
    earlier = json.loads((REPO / "benchmarks/results/stage_costs-avx2.json").read_text())  # a CPU without AVX-512
    assert f"**{earlier['total_s']:.0f} s**" in speed and earlier["date"] in speed
    assert "benchmarks/results/stage_costs-avx2.json" in speed
    for row in data["stages"]:
        if row["estimate_s"] is None:
            continue
        line = re.search(rf"^\| `{row['stage']}` \|.*$", speed, re.M)
        assert line, row["stage"]
        cells = [cell.strip() for cell in line.group(0).strip("|").split("|")]
        assert cells[1:] == [
            str(row["jobs"]),
            f"{row['share_s']:.0f}",
            f"{row['kernel_s'] * 1e3:.0f} ms x {row['kernel_count']}",
            f"{row['estimate_s']:.0f}",
        ], row["stage"]


def test_the_readme_quotes_the_ablation_result_file() -> None:
    sys.path.insert(0, str(REPO / "workflow" / "scripts"))
    from ablation import readme_table

    data = json.loads((REPO / "benchmarks/results/ablation.json").read_text())
    readme = (REPO / "README.md").read_text()
    results = readme[readme.index("## Results on the embedded dataset") :].split("**Speed**")[0]
    assert data["command"] in results and data["date"] in results
    assert readme_table(data) in results


def test_the_readme_headline_is_the_ablations_default_row_measured_as_shipped() -> None:
    sys.path.insert(0, str(REPO / "workflow" / "scripts"))
    from ablation import headline

    data = json.loads((REPO / "benchmarks/results/ablation.json").read_text())
    assert data["draws"] == [0, 1] and data["base"] is None  # the test draws, params.yaml as the default
    readme = (REPO / "README.md").read_text()
    assert headline(data) in readme
    shipped = yaml.safe_load((REPO / "params.yaml").read_text())
    measured = data["baseline_params"]
    for section in ("synth", "face", "interpolate", "magnify", "features", "au_graph"):
        # a param added after the measurement ran as its schema default (new params keep the old behaviour)
        assert checked_section(section, measured[section]) == checked_section(section, shipped[section]), section

    def default_model(train: dict) -> dict:  # other models' options do not change the default row
        train = checked_section("train", train)
        return {key: value for key, value in train.items() if key not in ("seeds", "models")} | {
            "options": train["models"][train["model"]]
        }

    assert default_model(measured["train"]) == default_model(shipped["train"])


def test_the_model_docs_quote_the_development_draw_result_file() -> None:
    sys.path.insert(0, str(REPO / "workflow" / "scripts"))
    from ablation import readme_table

    docs = (REPO / "docs/models.md").read_text()
    for name in ("development", "development-aurel", "development-c3d"):
        data = json.loads((REPO / f"benchmarks/results/{name}.json").read_text())
        assert data["draws"] == [100], name  # the development draw, never a test draw
        assert readme_table(data) in docs and data["date"] in docs, name


def test_the_dataset_docs_quote_the_identity_benchmark() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from identities import sentence

    data = json.loads((REPO / "benchmarks/results/identities.json").read_text())
    docs = " ".join((REPO / "docs/synthetic-dataset.md").read_text().split())
    assert sentence(data) in docs
    assert f"**{data['real']} of the {data['identities']} identities are real people" in docs


def test_the_magnification_docs_quote_their_result_files() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from magnification_gain import sentence
    from magnification_quality import markdown

    docs = (REPO / "docs/magnification.md").read_text()
    gain = json.loads((REPO / "benchmarks/results/magnification_gain.json").read_text())
    assert sentence(gain) in " ".join(docs.split())
    quality = json.loads((REPO / "benchmarks/results/magnification_quality.json").read_text())
    assert markdown(quality) in docs and quality["command"] in docs


def test_the_model_docs_quote_the_model_comparison() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from model_costs import comparison_table

    costs = json.loads((REPO / "benchmarks/results/model_costs.json").read_text())
    ablation = json.loads((REPO / "benchmarks/results/ablation.json").read_text())
    published = json.loads((REPO / "benchmarks/published.json").read_text())
    docs = (REPO / "docs/models.md").read_text()
    comparison = docs[docs.index("## Model comparison") :]
    more = [json.loads(path.read_text()) for path in sorted((REPO / "benchmarks/results").glob("ablation-*.json"))]
    assert comparison_table(ablation, costs, published, more) in comparison
    assert costs["command"] in comparison and costs["date"] in comparison
    hours = {name: costs["models"][name]["fold_seconds"] * 48 / 3600 for name in ("htnet", "capsule", "dsnca")}
    assert (
        f"about {hours['htnet']:.0f} CPU-hours for `htnet`, {hours['capsule']:.0f} for `capsule`, "
        f"{hours['dsnca']:.0f} for `dsnca`"
    ) in " ".join(comparison.split())
    check = json.loads((REPO / "benchmarks/results/development-t3d-motion.json").read_text())
    assert check["draws"] == [100]  # a diagnostic on the development draw, never a test draw
    row = check["rows"][0]
    low, high = row["uf1_ci95"]
    assert f"UF1 {row['uf1']:.3f} ({low:.3f}-{high:.3f})" in " ".join(comparison.split())


def test_the_face_docs_quote_the_frontalization_benchmark() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from frontalization import markdown

    docs = (REPO / "docs/face.md").read_text()
    for name, draws in (("frontalization-development", [100]), ("frontalization", [0, 1])):
        data = json.loads((REPO / f"benchmarks/results/{name}.json").read_text())
        assert data["draws"] == draws, name
        assert markdown(data) in docs and data["command"] in docs and data["date"] in docs, name


def test_the_face_docs_quote_the_head_rotation_ablation() -> None:
    sys.path.insert(0, str(REPO / "workflow" / "scripts"))
    from ablation import readme_table

    data = json.loads((REPO / "benchmarks/results/frontalization-uf1.json").read_text())
    assert data["draws"] == [0, 1] and data["base"] == "synth.head_pose_deg=20"
    docs = (REPO / "docs/face.md").read_text()
    assert readme_table(data) in docs and data["command"] in docs and data["date"] in docs


def test_the_face_docs_prose_quotes_the_same_records() -> None:
    """The sentences that summarise the tables carry the records' numbers, not typed-in ones."""
    docs = " ".join((REPO / "docs/face.md").read_text().split())
    landmarks = json.loads((REPO / "benchmarks/results/frontalization.json").read_text())["rows"]
    by_angle = {(row["yaw_deg"], row["pitch_deg"]): row for row in landmarks}
    at_25 = by_angle[(25, 0)]
    less = 1 - at_25["frontalize_px"][0] / at_25["similarity_px"][0]
    assert f"about {round(100 * less, -1):.0f}% less error at 25°" in docs
    assert f"costs about {by_angle[(0, 0)]['difference_px'][0]:.1f} px on faces that are already frontal" in docs
    turned = json.loads((REPO / "benchmarks/results/frontalization-uf1.json").read_text())["rows"][1]
    gain = turned["versus_baseline"]["uf1"]
    low, high = gain["ci95"]
    assert f"{gain['difference']:+.3f} UF1, with a paired interval from {low:+.3f} to {high:+.3f}" in docs
    frontal = json.loads((REPO / "benchmarks/results/ablation.json").read_text())["rows"][0]
    assert f"score {frontal['uf1']:.3f} ± {frontal['uf1_sd']:.3f} with similarity alignment" in docs


def test_the_htnet_checkpoint_size_in_the_docs_follows_from_its_parameters() -> None:
    import torch

    from merec.models import build_model

    with torch.device("meta"):
        model = build_model("htnet", 3, {"apex": (3, 32, 32), "landmarks": (68, 2)}, {})
    megabytes = 4 * sum(p.numel() for p in model.parameters()) / 1e6
    assert f"A fold's checkpoint is {round(megabytes, -1):.0f} MB (float32)" in (REPO / "docs/models.md").read_text()


def test_the_interpolation_docs_quote_the_rife_speed_records() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from rife_speed import clip_table, ifnet_table

    docs = (REPO / "docs/interpolation.md").read_text()
    speed = docs[docs.index("## Speed") :].split("## Quality")[0]
    for threads in (1, 2):
        data = json.loads((REPO / f"benchmarks/results/rife_speed-{threads}thread.json").read_text())
        assert data["threads"] == threads
        assert ifnet_table(data["ifnet"]) in speed and clip_table(data["clips"]) in speed, threads
        assert data["command"] in speed and data["date"] in speed, threads


def test_the_cluster_docs_quote_the_scale_records() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from workflow_scale import (
        history_sentence,
        large_table,
        long_table,
        memory_table,
        overhead_sentence,
        projection_table,
        readme_sentence,
        scale_table,
    )

    docs = (REPO / "docs/cluster.md").read_text()
    scale = docs[docs.index("## Scale") :]
    records = {
        name: json.loads((REPO / f"benchmarks/results/{name}.json").read_text())
        for name in ("workflow_scale", "workflow_scale_large", "workflow_scale_long", "stage_costs",
                     "workflow_scale-2026-12-03", "workflow_scale_large-2026-12-03")
    }  # fmt: skip
    small, large, long, costs = (records[name] for name in ("workflow_scale", "workflow_scale_large",
                                                            "workflow_scale_long", "stage_costs"))  # fmt: skip
    tables = (scale_table(small), large_table(large), long_table(long), memory_table(small, large),
              projection_table(costs))  # fmt: skip
    for table in tables:
        assert table in scale, table.splitlines()[0]
    for record in (small, large, long):
        assert record["command"] in scale and record["date"] in scale
    flat = " ".join(scale.split())
    assert overhead_sentence(small, large) in flat
    earlier = (records["workflow_scale-2026-12-03"], records["workflow_scale_large-2026-12-03"])
    assert history_sentence(earlier, (small, large)) in flat
    readme = " ".join((REPO / "README.md").read_text().split())
    assert readme_sentence(small, costs, large) in readme


def test_the_spotting_table_and_defaults_come_from_the_spotting_record() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from spotting import table

    record = json.loads((REPO / "benchmarks/results/spotting.json").read_text())
    for path in ("README.md", "docs/spotting.md"):
        text = (REPO / path).read_text()
        assert table(record) in text and record["command"] in text and record["date"] in text, path
    chosen = record["development"]["chosen"]  # the defaults were chosen on the development draw
    spot = checked_section("spot", yaml.safe_load((REPO / "params.yaml").read_text())["spot"])
    assert spot["p"] == {"baseline": chosen["baseline"]["p"], "learned": chosen["learned"]["p"]}
    assert spot["baseline"]["contrast"] == chosen["baseline"]["contrast"]
    assert checked_section("spot") == spot  # the schema's defaults are the same values
    assert record["development"]["seed"] not in [draw["seed"] for draw in record["evaluation"]["draws"]]
    from spotting import published_sentence

    published = json.loads((REPO / "benchmarks/published_spotting.json").read_text())
    assert published_sentence(published) in " ".join((REPO / "docs/spotting.md").read_text().split())


def test_the_strs_table_comes_from_its_record() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from strs import table

    record = json.loads((REPO / "benchmarks/results/strs.json").read_text())
    for path in ("README.md", "docs/spotting.md"):
        text = (REPO / path).read_text()
        assert table(record) in text and record["command"] in text and record["date"] in text, path
    assert record["params"]["spot"] == yaml.safe_load((REPO / "params.yaml").read_text())["spot"]  # the defaults


def test_the_spotting_docs_quote_the_throughput_record() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from spot_throughput import sentence

    record = json.loads((REPO / "benchmarks/results/spot_throughput.json").read_text())
    docs = " ".join((REPO / "docs/spotting.md").read_text().split())
    assert sentence(record) in docs


def test_the_predict_docs_quote_their_record() -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from predict import table

    record = json.loads((REPO / "benchmarks/results/predict.json").read_text())
    text = (REPO / "docs/predict.md").read_text()
    assert table(record) in text and record["command"] in text and record["date"] in text
    assert record["loso_record"]["date"] == json.loads((REPO / "benchmarks/results/strs.json").read_text())["date"]
