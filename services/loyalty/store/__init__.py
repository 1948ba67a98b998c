"""Loyalty store: every query of the loyalty service lives here."""

from servicekit.mongo import Index

INDEXES: list[Index] = []
