"""Coupon service: budgets with approval, batches, claims, wallet, redemption, channels, alerts."""
