"""Reach store: every query of the reach service lives here."""

from servicekit.mongo import Index

INDEXES: list[Index] = []
