"""Coupon store: every query of the coupon service lives here."""

from servicekit.mongo import Index

INDEXES: list[Index] = []
