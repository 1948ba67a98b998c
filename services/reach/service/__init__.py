"""Reach use cases."""
