"""Tagging service: tags, automatic tagging rules, and audience segments kept current."""
