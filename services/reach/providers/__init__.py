"""Provider adapters: one file per provider, each a `Provider` (see base.py). `guarded.py`
wraps any of them with retries for transient faults and a circuit breaker."""
