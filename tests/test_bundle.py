"""Model bundles: export of the run on every subject, and the checks of loading one."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from merec.bundle import RECOGNISER, check_params, export, load_bundle
from merec.config import load_params
from merec.datasets.ids import ALL_SUBJECTS
from merec.errors import MerecError
from merec.runs import run_dir
from merec.train import TrainParams, train_fold, write_fold
from tests.helpers import REPO
from tests.test_train import CLASSES, STST, toy_features


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """``results/toy`` with a train_all run of the toy features, and the params it was trained with."""
    params = load_params(REPO / "params.yaml")
    params["train"].update(model="stst", epochs=3, batch_size=8, device="cpu")
    params["train"]["models"]["stst"] = {**params["train"]["models"]["stst"], **STST}
    root = tmp_path_factory.mktemp("results") / "toy"
    result = train_fold(toy_features(), CLASSES, ALL_SUBJECTS, TrainParams.from_params(params))
    write_fold(result, run_dir(root / "model", params["train"]["seeds"][0], ALL_SUBJECTS))
    return root, params


def test_an_exported_bundle_loads_its_recogniser_and_predicts_as_the_run_did(run, tmp_path: Path) -> None:
    root, params = run
    bundle_path = export(root, tmp_path / "model.merec", params)
    state = torch.load(bundle_path / RECOGNISER, weights_only=True)  # tensors only, nothing pickled
    assert all(isinstance(value, torch.Tensor) for value in state.values())
    bundle = load_bundle(bundle_path)
    assert bundle.classes == CLASSES and bundle.manifest["model"] == "stst"
    assert bundle.params["face"] == params["face"] and set(bundle.input_scales) >= {"apex"}
    assert list(bundle.params["features"]["rois"]) == list(params["features"]["rois"])  # the channel order kept
    assert (bundle_path / "magnet.pt").is_file()  # the magnify stage's weights travel with it
    original = torch.load(run_dir(root / "model", 0, ALL_SUBJECTS) / "model.pt", weights_only=True)
    assert all(torch.equal(original[key], value) for key, value in bundle.model.state_dict().items())
    check_params(bundle, params)  # its own params: no error


def test_a_bundle_refuses_other_params_another_version_and_a_changed_file(run, tmp_path: Path) -> None:
    root, params = run
    bundle_path = export(root, tmp_path / "model.merec", params)
    bundle = load_bundle(bundle_path)
    other = copy.deepcopy(params)
    other["interpolate"]["frames"] = 7
    with pytest.raises(MerecError, match=r"other params: interpolate.frames differ"):
        check_params(bundle, other)
    manifest = json.loads((bundle_path / "bundle.json").read_text())
    (bundle_path / "bundle.json").write_text(json.dumps({**manifest, "merec": "0.0.1"}))
    with pytest.raises(MerecError, match="exported by merec 0.0.1 .* export it again with this version"):
        load_bundle(bundle_path)
    (bundle_path / "bundle.json").write_text(json.dumps(manifest))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "a.txt").write_text("x")
    with pytest.raises(MerecError, match="holds other files"):
        export(root, tmp_path / "mine", params)
    export(root, bundle_path, params)  # an earlier bundle is replaced
    (bundle_path / RECOGNISER).write_bytes((bundle_path / RECOGNISER).read_bytes()[:-10])
    with pytest.raises(MerecError, match="does not match the bundle's checksum"):
        load_bundle(bundle_path)


def test_export_needs_a_current_run_on_every_subject(run, tmp_path: Path) -> None:
    root, params = run
    with pytest.raises(MerecError, match="no recogniser trained on every subject; build it first"):
        export(tmp_path / "none", tmp_path / "b", params)
    changed = copy.deepcopy(params)
    changed["train"]["lr"] = 0.5
    with pytest.raises(MerecError, match="trained with other train params than params.yaml's; rerun train_all"):
        export(root, tmp_path / "b", changed)
    assert not (tmp_path / "b").exists()
