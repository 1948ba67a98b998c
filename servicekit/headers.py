"""Headers the gateway and the services agree on."""

TENANT_HEADER = "X-Tenant-Id"
REQUEST_ID_HEADER = "X-Request-Id"
#: Set by the gateway: the public path prefix (`/api/v1/customer`) a service is reached at.
FORWARDED_PREFIX_HEADER = "X-Forwarded-Prefix"
