"""merec: a reproducible micro-expression recognition pipeline.

Stages, in the only direction data flows: datasets -> face -> interpolate -> magnify -> features
-> (au_graph) -> train -> evaluate. Shared helpers (:mod:`merec.io`, :mod:`merec.config`,
:mod:`merec.checkpoints`, :mod:`merec.runtime`) sit below all of them.
"""

__version__ = "0.1.0"
