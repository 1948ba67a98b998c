"""Tagging use cases."""
