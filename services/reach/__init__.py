"""Reach service: outreach channels, templates, triggered campaigns, consent, caps and receipts."""
