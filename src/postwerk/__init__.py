"""Postwerk: self-hostable mail hosting with a mittwald-compatible mail API."""

__version__ = "0.1.0"
