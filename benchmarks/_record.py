"""Result files of the benchmark scripts: every script writes its JSON the same way."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def write_record(result: dict[str, Any], output: Path | None, summary: str = "") -> None:
    """Print ``result`` as JSON (and ``summary`` after it); also write the JSON to ``output`` if given."""
    text = json.dumps(result, indent=1, sort_keys=True)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n")
    print(text)
    if summary:
        print(summary)


def cpu_description() -> str:
    """The CPU's model name and the vector units that decide its kernels' speed (from /proc/cpuinfo).

    The same 2-core machine "of this kind" has come both with and without AVX-512; torch's and
    OpenCV's kernels run about twice as fast with it, so every timing record names which one it had.
    """
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in fields.items()}
    name = fields.get("model name") or platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    units = [unit for unit in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if unit in flags]
    return f"{name} ({', '.join(units) or 'no AVX2'}), {os.cpu_count()} logical CPUs"
