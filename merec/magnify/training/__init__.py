"""MagNet training (the ``magnet_train`` stage): synthetic magnification pairs and the training loop.

:mod:`merec.magnify.training.pairs` makes Oh et al.-style pairs with known sub-pixel motion;
:mod:`merec.magnify.training.loop` trains :class:`merec.magnify.magnet.MagNet` on them. Kept apart
from the inference code of :mod:`merec.magnify`, so that editing training code never reruns the
magnify stage (only ``magnet_train``, when the pipeline uses its checkpoint).
"""
