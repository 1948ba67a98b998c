"""The API gateway: the single entry of the system. It authenticates the caller, routes
`/api/v1/<domain>/...` to the service that owns the domain, and serves the merged OpenAPI
document and the health of every service."""
