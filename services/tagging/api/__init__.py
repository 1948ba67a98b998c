"""Tagging HTTP API."""

from services.tagging.api.profiles import router

__all__ = ["router"]
