"""Imports every domain's event module, so the registry knows them all."""

from contracts import coupon, customer, loyalty, reach, tagging

__all__ = ["coupon", "customer", "loyalty", "reach", "tagging"]
