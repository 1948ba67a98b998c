"""Coupon domain: models and rules, no I/O."""
