"""Imports every domain's event module, so the registry knows them all."""

from contracts import customer, tagging

__all__ = ["customer", "tagging"]
