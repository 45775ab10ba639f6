"""Result files of the benchmark scripts: every script writes its JSON the same way."""

from __future__ import annotations

import json
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
