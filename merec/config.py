"""params.yaml: loading, JSON-schema validation, defaults, and typed parameter objects.

``params.yaml`` is the single source of parameter VALUES for Snakemake (``configfile:``), DVC
(``params:`` deps) and the ``merec`` command; ``merec/schemas/params.schema.yaml`` is the single
source of their CONSTRAINTS and DEFAULTS. Each stage reads only its own section, as a frozen
dataclass built by :meth:`Params.from_mapping`: the section is validated against its part of the
schema (errors name the key), defaults are filled in from the schema, nested sections become
nested dataclasses and lists become tuples.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import types
import typing
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Self

import yaml

from merec.errors import MerecError

DEFAULT_PARAMS = "params.yaml"


@functools.cache
def schema() -> dict[str, Any]:
    """The params schema shipped with the package."""
    text = resources.files("merec").joinpath("schemas/params.schema.yaml").read_text()
    return yaml.safe_load(text)


def subschema(path: str) -> dict[str, Any]:
    """The schema of one section (``train.models.aurel``), with the shared ``$defs`` attached."""
    node = schema()
    for part in path.split("."):
        properties = node.get("properties", {})
        if part not in properties:
            raise MerecError(f"params schema has no section {path!r}")
        node = properties[part]
    return {"$defs": schema().get("$defs", {}), **node}


def _key_path(error: Any, prefix: str) -> str:
    parts = [*([prefix] if prefix else []), *(str(p) for p in error.absolute_path)]
    return ".".join(parts) if parts else "(top level)"


def _describe(error: Any) -> str:
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        return f"unknown key(s) {', '.join(extra)}; allowed: {allowed}"
    if error.validator == "required":
        return error.message
    return f"{error.instance!r}: {error.message}"


def _validate(value: Any, node: Mapping[str, Any], source: str, prefix: str = "") -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(node)
    errors = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"  {_key_path(e, prefix)}: {_describe(e)}" for e in errors]
        raise MerecError(f"{source} is not valid:\n" + "\n".join(lines))


def validate_params(params: Mapping[str, Any], source: str = DEFAULT_PARAMS) -> None:
    """Raise :class:`MerecError` listing every schema violation as ``section.key: problem``."""
    _validate(dict(params), schema(), source)


def fill_defaults(value: Any, node: Mapping[str, Any]) -> Any:
    """A copy of ``value`` with every key the schema gives a default for filled in, recursively."""
    if not isinstance(value, Mapping):
        return copy.deepcopy(value)
    out = {key: copy.deepcopy(item) for key, item in value.items()}
    for key, child in node.get("properties", {}).items():
        if key not in out and "default" in child:
            out[key] = copy.deepcopy(child["default"])
        if key in out:
            out[key] = fill_defaults(out[key], child)
    return out


def checked_section(path: str, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``values`` of section ``path`` (``face``, ``train.models.aurel``) validated, defaults filled in."""
    node = subschema(path)
    given = dict(values or {})
    _validate(given, node, "params", path)
    return fill_defaults(given, node)


def load_params(path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """Read and validate a params file; every default of the schema filled in."""
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
    return fill_defaults(params, schema())


def section(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A deep copy of one section (``a.b`` for nested ones)."""
    node: Any = params
    for part in name.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise MerecError(f"params: section {name!r} is missing")
        node = node[part]
    return copy.deepcopy(node)


def dataset_names(params: Mapping[str, Any]) -> list[str]:
    """Every dataset params.yaml declares: those under ``datasets`` and those under ``catalogue``."""
    return sorted(set(params.get("datasets") or {}) | set(params.get("catalogue") or {}))


def spotted_dataset(long_videos: str) -> str:
    """The short-clip dataset made from a long-video dataset's spotting run (spot-then-recognize):
    its annotated and its spotted micro-expressions (:mod:`merec.spotting.recognition`). Declared
    dataset names have no ``-`` (the params schema), so it never takes a declared one's name."""
    return f"{long_videos}-spotted"


def dataset_spec(params: Mapping[str, Any], name: str, long_videos: bool = False) -> dict[str, Any]:
    """The entry of dataset ``name`` (``datasets`` first, then ``catalogue``; with ``long_videos``,
    ``long_videos`` then ``long_video_catalogue``); root ``data/raw/<name>`` if not given."""
    keys = ("long_videos", "long_video_catalogue") if long_videos else ("datasets", "catalogue")
    for key in keys:
        entries = params.get(key) or {}
        if name in entries:
            spec = dict(entries[name] or {})
            spec.setdefault("root", f"data/raw/{name}")
            return spec
    known = ", ".join(sorted({n for key in keys for n in params.get(key) or {}})) or "none"
    example = "samm_lv" if long_videos else "samm"
    raise MerecError(
        f"dataset {name!r} is not declared in params.yaml (declared: {known}); add it under '{keys[0]}', "
        f"e.g. `{name}: {{format: {example}, root: data/raw/{name}}}`"
    )


class Params:
    """Base of the typed parameter sections: a frozen dataclass naming its schema section.

    Subclasses are ``@dataclass(frozen=True)`` with a ``section`` class variable (``"face"``,
    ``"interpolate.rife"``) and one field per key of that section, without defaults: the defaults
    live in the schema.
    """

    section: ClassVar[str]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None) -> Self:
        """Validate ``values`` (keys of the section; missing ones take the schema default) and build."""
        return _build(cls, checked_section(cls.section, values))

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Self:
        """The section of a whole params mapping (as :func:`load_params` returns it)."""
        node: Any = params
        for part in cls.section.split("."):
            node = node.get(part, {}) if isinstance(node, Mapping) else {}
        return cls.from_mapping(node)

    def as_dict(self) -> dict[str, Any]:
        """The section as plain data (tuples as lists), e.g. for provenance records."""
        return _plain(dataclasses.asdict(self))  # type: ignore[call-overload]


def _build(cls: type, values: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:  # the schema and the dataclass disagree: a bug, not a user error
        raise TypeError(f"{cls.__name__}: schema keys {unknown} have no field")
    return cls(**{name: _convert(hints[name], value) for name, value in values.items()})


def _convert(hint: Any, value: Any) -> Any:
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        if isinstance(option, type) and issubclass(option, Params) and isinstance(value, Mapping):
            return _build(option, value)
    origin = typing.get_origin(hint) or hint
    if origin is tuple and isinstance(value, list | tuple):
        return tuple(_plain_tuple(item) for item in value)
    return value


def _plain_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value
