"""params.yaml: loading and JSON-schema validation with messages that name the bad key.

``params.yaml`` is the single source of parameters for Snakemake (``configfile:``), DVC
(``params:`` deps) and the ``merec`` command. Each stage reads only its own section.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from merec.io import MerecError, PathLike

DEFAULT_PARAMS = "params.yaml"


@functools.lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    """The params schema shipped with the package (workflow/schemas links to it)."""
    text = resources.files("merec").joinpath("schemas/params.schema.yaml").read_text()
    return yaml.safe_load(text)


def _key_path(error: Any) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def _describe(error: Any) -> str:
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"unknown key(s) {', '.join(extra)}; allowed: {allowed}"
    if error.validator == "required":
        return error.message
    return f"{error.instance!r}: {error.message}"


def validate_params(params: Mapping[str, Any], source: str = DEFAULT_PARAMS) -> None:
    """Raise :class:`MerecError` listing every schema violation as ``section.key: problem``."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(dict(params)), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"  {_key_path(e)}: {_describe(e)}" for e in errors]
        raise MerecError(f"{source} is not valid:\n" + "\n".join(lines))


def load_params(path: PathLike = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read and validate a params file."""
    file = Path(path)
    if not file.is_file():
        raise MerecError(f"{file}: params file not found (run from the project root or pass --params)")
    try:
        params = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise MerecError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(params, dict):
        raise MerecError(f"{file}: expected a mapping of sections at the top level")
    validate_params(params, str(file))
    return params


def section(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A deep copy of one section (``a.b`` for nested ones)."""
    node: Any = params
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise MerecError(f"params: section {name!r} is missing")
        node = node[part]
    return copy.deepcopy(node)


def dataset_spec(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The ``datasets.<name>`` entry with its root defaulted to ``data/raw/<name>``."""
    datasets = params.get("datasets", {})
    if name not in datasets:
        known = ", ".join(sorted(datasets)) or "none"
        raise MerecError(
            f"dataset {name!r} is not listed under 'datasets' in params.yaml (listed: {known}); "
            f"add e.g. `{name}: {{format: samm, root: data/raw/{name}}}`"
        )
    spec = dict(datasets[name] or {})
    spec.setdefault("root", f"data/raw/{name}")
    return spec
