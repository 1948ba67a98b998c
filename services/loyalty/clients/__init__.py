"""Clients of other services the loyalty service calls over HTTP."""
