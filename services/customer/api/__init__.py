"""Customer HTTP API: routes validate and delegate to the use cases."""

from services.customer.api.customers import router

__all__ = ["router"]
