"""Running an exported bundle on a person's own recording: spotting, recognition and a report page.

``merec predict VIDEO --model model.merec --output DIR`` (:func:`predict`; the steps:
:mod:`merec.predict.pipeline`, the inputs: :mod:`merec.predict.source`, the page:
:mod:`merec.predict.report`).
"""

from merec.predict.pipeline import PredictOptions, predict

__all__ = ["PredictOptions", "predict"]
