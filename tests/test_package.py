"""The package as a whole: safe loaders everywhere, the layering contracts, one source for every
default, a light ``merec evaluate``, and a non-editable install that carries its data files.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from merec.config import schema
from tests.helpers import REPO
from tests.helpers.stages import write_stage


def calls(tree: ast.AST, dotted: str) -> list[ast.Call]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and ast.unparse(node.func) == dotted:
            found.append(node)
    return found


def keyword(call: ast.Call, name: str) -> str | None:
    return next((ast.unparse(k.value) for k in call.keywords if k.arg == name), None)


def test_every_loader_in_the_package_is_safe() -> None:
    """torch.load only with weights_only=True, np.load never with pickles, YAML only via safe_load."""
    sources = sorted((REPO / "merec").rglob("*.py")) + sorted((REPO / "workflow").rglob("*.py"))
    torch_loads = 0
    for path in sources:
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(REPO)
        for call in calls(tree, "torch.load"):
            torch_loads += 1
            assert keyword(call, "weights_only") == "True", f"{where}:{call.lineno}: torch.load without weights_only"
        for call in calls(tree, "np.load") + calls(tree, "numpy.load"):
            assert keyword(call, "allow_pickle") in (None, "False"), f"{where}:{call.lineno}: np.load with pickles"
        for name in ("yaml.load", "yaml.unsafe_load", "pickle.load", "pickle.loads", "pd.read_pickle"):
            assert not calls(tree, name), f"{where}: {name} can run code from a file"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("torch", "numpy", "pickle", "yaml", "joblib"):
                names = {alias.name for alias in node.names}
                assert not names & {"load", "loads", "unsafe_load"}, f"{where}: a bare load imported from {node.module}"
    assert torch_loads >= 1  # read_state_dict, the one place checkpoints are read


def test_the_layering_contracts_hold() -> None:
    """import-linter (contracts in pyproject.toml): stages import only earlier stages, helpers no
    stage, no import cycles, no module importing its own package."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint_imports), "--config", "pyproject.toml"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout and "KEPT" in result.stdout


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out |= _leaves(item, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: value}


def _schema_default(path: str) -> Any:
    node: dict[str, Any] = schema()
    parts = path.split(".")
    for i, part in enumerate(parts):
        child = node.get("properties", {}).get(part)
        if child is None:  # a free-form mapping with a default as a whole (features.rois)
            return _leaves(node.get("default", {})).get(".".join(parts[i:]), KeyError)
        node = child
    return node.get("default", KeyError)


def test_params_yaml_gives_every_parameter_its_schema_default() -> None:
    """One source per default: params.yaml spells out values equal to the schema's defaults."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for listing in ("datasets", "catalogue", "long_videos", "long_video_catalogue"):  # declarations, not defaults
        params.pop(listing)
    differ = {
        key: (value, _schema_default(key)) for key, value in _leaves(params).items() if value != _schema_default(key)
    }
    assert not differ, f"params.yaml values that differ from (or lack) a schema default: {differ}"


def test_merec_evaluate_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from merec import cli\n"
        "import merec.evaluate, merec.runs, merec.datasets.ingest\n"
        "assert cli.build_parser().parse_args(['evaluate', '--samples', 's', '--folds', 'f', '--metrics', 'm'])\n"
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package as a non-editable install would lay it out: the built wheel, unpacked."""
    out = tmp_path_factory.mktemp("wheel")
    source = out / "source"  # a copy: setuptools writes build/ and *.egg-info/ next to the sources
    shutil.copytree(REPO / "merec", source / "merec", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("merec-*.whl")
    site = out / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def test_the_wheel_carries_the_schema_and_the_shipped_weights(installed: Path) -> None:
    for name in ("schemas/params.schema.yaml", "weights/magnet.pt", "weights/magnet.json"):
        assert (installed / "merec" / name).is_file(), name


def test_a_non_editable_install_runs_a_stage_with_default_params_anywhere(installed: Path, tmp_path: Path) -> None:
    """Outside the repository the default MagNet checkpoint resolves to the installed weights."""
    params = {"datasets": {"synth": {"format": "samm", "root": "data/raw/synth"}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    frames = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    write_stage(tmp_path / "interpolate", "interpolate", {"s-1": {"frames": frames}})
    env = {"PYTHONPATH": str(installed), "PATH": str(Path(sys.executable).parent), "MEREC_NO_PROGRESS": "1"}
    command = [sys.executable, "-m", "merec", "magnify", "--input", "interpolate/shard-0.json"]
    result = subprocess.run(
        [*command, "--output", "magnify/shard-0.json"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "magnify" / "shard-0" / "s-1.npz").is_file()
    where = [sys.executable, "-c", "import merec; print(merec.__file__)"]
    located = subprocess.run(where, cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert Path(located.strip()).is_relative_to(installed)


def test_dvc_lock_still_vouches_for_the_shipped_magnet_weights() -> None:
    """Editing MagNet's training code or params makes `dvc repro` retrain (90 min): retrain, or for a
    change that does not alter training, record it with `dvc commit magnet_train`."""
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "status", "magnet_train"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0 and "up to date" in result.stdout, result.stdout + result.stderr
