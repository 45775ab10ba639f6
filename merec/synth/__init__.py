"""The embedded synthetic datasets: micro-expressions on real face photos, in real datasets' formats.

:mod:`merec.synth.clips` writes short annotated clips in SAMM's layout (the default dataset).
"""

from merec.synth.clips import ANNOTATION_FILE, ClipSpec, SynthParams, generate

__all__ = ["ANNOTATION_FILE", "ClipSpec", "SynthParams", "generate"]
