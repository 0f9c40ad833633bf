"""auto: the default detector, an ensemble of channels calibrated on the series itself.

A user who does not choose an algorithm gets this one. No setting depends on
the series: scale, noise, cadence and seasonality are learned from the
series, and every length is a duration (the cadence turns it into points).
docs/detectors.md describes the channels and their defaults.

Where each part lives
---------------------
``params``       parameters (durations) and shared constants
``detector``     :class:`AutoDetector`: state, scoring, explanations
``kernel``       the compiled loop: every channel, the ensemble, learning
``window``       the local window (a ring and its sorted copy)
``calibration``  the local channel's calibration against its own past
``layout``       the state's arrays and their JSON
``_cache``       numba's on-disk cache, stamped with the hash of the whole package
"""

from .detector import AutoDetector, warm_up
from .params import ALERT_EXCESS, CHANNELS, AutoParams

__all__ = ["ALERT_EXCESS", "CHANNELS", "AutoDetector", "AutoParams", "warm_up"]
