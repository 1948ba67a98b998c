"""Loyalty HTTP API: routes validate and delegate to the use cases."""

from fastapi import APIRouter

router = APIRouter()
