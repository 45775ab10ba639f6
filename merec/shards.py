"""Shards: per-sample work in stable groups, and the manifest a stage writes for each group.

Every per-sample stage (face, interpolate, magnify, features) runs once per shard, so that
``snakemake --cores N`` runs N shards at a time and a cluster spreads them over nodes. A sample's
shard is fixed by its id alone (:func:`shard_of`: CRC-32 of the id modulo the number of shards), so
adding, removing or changing one sample touches one shard and what follows it.

A stage's output for shard ``k`` is a folder and a manifest beside it::

    <stage>/shard-<k>/<sample>.npz      one archive per sample
    <stage>/shard-<k>.json              the manifest: written last, atomically

The manifest lists each written sample with the SHA-256 of its archive and each sample left out
(with the reason, carried on by the stages that follow), so it changes exactly when the shard's
content does: both Snakemake (checksums of small input files) and DVC (hashes) see a content
change, never a mere rewrite. Readers take a manifest, or a stage folder holding the manifests of
every shard. The writer (:func:`write_shard`) and the readers live here together.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from merec.errors import MerecError
from merec.io import PathLike, atomic_path

PREFIX = "shard-"
MANIFEST_VERSION = 1


def shard_of(sample: str, shards: int) -> int:
    """The shard of ``sample`` among ``shards``: CRC-32 of its id modulo ``shards``."""
    return zlib.crc32(sample.encode("utf-8")) % shards


def shard_name(shard: int) -> str:
    """``shard-<k>``: the name of shard ``k``'s folder and (with ``.json``) of its manifest."""
    return f"{PREFIX}{shard}"


def file_digest(path: PathLike) -> str:
    """SHA-256 of a file's bytes (hex)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Shard:
    """One shard of one stage: its manifest, the samples written and the samples left out."""

    manifest: Path
    stage: str
    shard: int
    shards: int
    samples: Mapping[str, str]  # sample -> SHA-256 of <sample>.npz
    skipped: Mapping[str, str] = field(default_factory=dict)  # sample -> reason

    @property
    def folder(self) -> Path:
        """The folder holding the shard's ``<sample>.npz`` files."""
        return self.manifest.with_suffix("")

    def file(self, sample: str) -> Path:
        """The archive of ``sample``."""
        return self.folder / f"{sample}.npz"

    def files(self) -> list[tuple[str, Path]]:
        """(sample, archive) of every written sample, sorted by sample id; every file must exist."""
        out = []
        for sample in sorted(self.samples):
            path = self.file(sample)
            if not path.is_file():
                raise MerecError(
                    f"{path}: listed in {self.manifest} but missing; rerun the {self.stage} stage for this shard"
                )
            out.append((sample, path))
        return out


def output_folder(manifest: PathLike) -> Path:
    """The folder a stage writes beside the manifest path it is given (``.../shard-0.json`` -> ``.../shard-0``)."""
    path = Path(manifest)
    if path.suffix != ".json":
        raise MerecError(f"{path}: a shard's output is named by its manifest, <stage>/shard-<k>.json")
    return path.with_suffix("")


def write_shard(
    manifest: PathLike,
    stage: str,
    shard: int,
    shards: int,
    written: Iterable[str],
    skipped: Mapping[str, str] | None = None,
) -> Shard:
    """Write the manifest of a shard whose archives are already in place (hashes them)."""
    path = Path(manifest)
    folder = path.with_suffix("")
    samples = {sample: file_digest(folder / f"{sample}.npz") for sample in sorted(written)}
    record = {
        "version": MANIFEST_VERSION,
        "stage": stage,
        "shard": shard,
        "shards": shards,
        "samples": samples,
        "skipped": dict(sorted((skipped or {}).items())),
    }
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    return Shard(path, stage, shard, shards, samples, record["skipped"])


def read_shard(manifest: PathLike) -> Shard:
    """A shard's manifest (a clear error when it is missing, unreadable or of another layout)."""
    path = Path(manifest)
    if not path.is_file():
        raise MerecError(f"{path}: shard manifest is missing; run the stage that makes it")
    try:
        record = json.loads(path.read_text())
        return Shard(
            path,
            str(record["stage"]),
            int(record["shard"]),
            int(record["shards"]),
            dict(record["samples"]),
            dict(record.get("skipped", {})),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise MerecError(f"{path}: not a shard manifest ({exc}); delete it and rerun the stage that made it") from exc


def read_stage(paths: Sequence[PathLike] | PathLike) -> list[Shard]:
    """Every shard of a stage, from manifests or from stage folders holding them; all shards present.

    ``paths`` may mix manifest files and stage folders; together they must hold shards ``0..n-1``
    of one sharding (``n`` as the manifests record it), each once.
    """
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    manifests: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(item.glob(f"{PREFIX}*.json"))
            if not found:
                raise MerecError(f"{item}: no shard manifests ({PREFIX}<k>.json); run the stage that makes them")
            manifests.extend(found)
        else:
            manifests.append(item)
    shards = [read_shard(path) for path in manifests]
    counts = {shard.shards for shard in shards}
    if len(counts) != 1:
        raise MerecError(
            f"shard manifests of different shardings ({', '.join(map(str, sorted(counts)))} shards) in "
            f"{', '.join(sorted({str(s.manifest.parent) for s in shards}))}: delete the stale ones and rerun"
        )
    (count,) = counts
    numbers = sorted(shard.shard for shard in shards)
    if numbers != list(range(count)):
        missing = sorted(set(range(count)) - set(numbers))
        where = shards[0].manifest.parent
        raise MerecError(
            f"{where}: shards {', '.join(map(str, missing)) or '(duplicated)'} of {count} are missing; "
            "run the stage for every shard"
        )
    return sorted(shards, key=lambda shard: shard.shard)


def stage_samples(shards: Sequence[Shard]) -> dict[str, Path]:
    """Sample -> archive over every shard of a stage."""
    return {sample: path for shard in shards for sample, path in shard.files()}


def stage_skipped(shards: Sequence[Shard]) -> dict[str, str]:
    """Sample -> reason, for every sample a stage (or one before it) left out."""
    return {sample: reason for shard in shards for sample, reason in shard.skipped.items()}


def describe(shards: Sequence[Shard]) -> dict[str, Any]:
    """Counts for logs: shards, samples written and skipped."""
    return {
        "shards": len(shards),
        "samples": sum(len(s.samples) for s in shards),
        "skipped": sum(len(s.skipped) for s in shards),
    }
