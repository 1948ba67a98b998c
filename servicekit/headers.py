"""Headers the gateway and the services agree on."""

TENANT_HEADER = "X-Tenant-Id"
REQUEST_ID_HEADER = "X-Request-Id"
#: Set by the gateway: the public path prefix (`/api/v1/customer`) a service is reached at.
FORWARDED_PREFIX_HEADER = "X-Forwarded-Prefix"
#: Set by the gateway from the authenticated principal: who acts, and with which roles.
ACTOR_ID_HEADER = "X-Actor-Id"
ACTOR_KIND_HEADER = "X-Actor-Kind"
ACTOR_ROLES_HEADER = "X-Actor-Roles"
