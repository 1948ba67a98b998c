"""Customer domain: models and rules, no I/O."""
