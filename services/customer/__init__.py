"""Customer service: the entry of all customer data (profiles, consent, ownership, merge,
behaviour, orders and statistics)."""
