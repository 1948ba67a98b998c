"""Partner platforms (异业合作) calling the API with a key and a signed request.

- `signature`: the canonical request and its HMAC-SHA256 signature (pure);
- `registry`: partners, their sealed secrets, and the nonces already used (MongoDB);
- `authenticator`: the check the gateway runs before forwarding a partner's request;
- `api`: how staff register partners and rotate or suspend their keys.
"""
