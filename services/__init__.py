"""ɳSentry: nself-anomaly and nself-oncall."""

__version__ = "0.1.0"
