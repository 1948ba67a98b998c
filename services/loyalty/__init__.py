"""Loyalty service: points ledger of lots, tiers, benefits and benefit cards, stored value."""
