"""Loading a benchmark script (``benchmarks/<name>.py``) as a module, to test its helpers."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.helpers import REPO


def load_script(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` imported as the module ``name`` (its shared helpers importable)."""
    if str(REPO / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their shared helpers by name
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
