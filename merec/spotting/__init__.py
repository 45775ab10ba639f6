"""Spotting micro-expressions in long videos, and scoring spotted intervals (spot-then-recognize).

:mod:`merec.spotting.metrics` holds the MEGC interval metrics and STRS.
"""
