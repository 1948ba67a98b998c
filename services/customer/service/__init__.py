"""Customer use cases, one module per part of the domain: load, apply the domain's rules,
save with the events that follow (one transaction)."""
