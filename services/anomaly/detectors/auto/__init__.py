"""auto: the default ensemble, record-breaking novelty on four views of a series.

A user who does not choose an algorithm gets this one. No setting depends on
the series: every scale it uses is learned from the series itself.

How it works
------------
Four *channels* look at the series in different ways, each against an
*envelope* (a range) of its own history:

``level``
    the value itself, against the range of everything seen so far. The range
    fades back by one noise unit every ``forget`` points, so a very old
    extreme does not mask new anomalies for ever.
``mean``
    the mean of the latest ``mean_window`` points, against the range of that
    mean over the latest ``recent`` points: a level shift or a slow slide
    that stays inside the long-term range is still new for the recent past.
``seasonal``
    the change from the same time of day one season ago (a day by default,
    from a table of time slots, so irregular cadence and gaps are fine),
    against the fading range of past changes. It counts only as much as the
    season explains the series: its weight falls to zero when the range of
    these changes is not clearly narrower than the range of the values.
``recent``
    the value against its range over the latest ``recent`` points, so one
    huge old extreme cannot mask smaller excursions in the ``level`` channel
    for longer than that.

A point is surprising in a channel when it breaks that channel's envelope.
The surprise is the *excess* over the envelope in noise units; the noise unit
is the exponentially weighted mean absolute change between consecutive
values (consecutive seasonal changes for the seasonal channel), learned
without start-up bias. In a stable series the envelope holds every past
extreme, so records and alerts become rare as the detector learns, with no
threshold fitted to the series.

The ensemble excess is the largest channel excess, the mean, seasonal and
recent channels weighted by ``mean_weight``, ``seasonal_weight`` and
``recent_weight``. Right after an
alert a repeat is reported only if it is clearly worse: the excess is reduced
by ``refractory_factor`` times the largest alert-level excess (at least 0.5) of
the previous ``refractory`` points.

Score: ``1 - 0.01 ** (excess / 0.5)``, so the default alert threshold 0.99 is
reached when a channel breaks its range by 0.5 noise units. Band
(``lower``/``upper``): the level channel's range widened by those 0.5 noise
units; ``expected``: the mean of the previous ``mean_window`` points.

Where each part lives
---------------------
``params``       parameters and shared constants (channel codes, alert level)
``detector``     :class:`AutoDetector`, which composes the parts below
``noise``        noise units (EW mean absolute change, in closed form)
``ranges``       the fading envelope and the recent block ranges, excess, unit
``means``        the mean channel's rolling means
``season``       the seasonal channel: cadence, slot table, seasonal gate
``ensemble``     the largest weighted channel excess, score and channel code
``refractory``   damping of repeats right after an alert
``scratch``      work arrays reused from batch to batch
``jsonable``     non-finite floats in the JSON state
"""

from .detector import AutoDetector
from .params import CHANNELS, EXCESS_AT_ALERT, AutoParams

__all__ = ["CHANNELS", "EXCESS_AT_ALERT", "AutoDetector", "AutoParams"]
