"""Coupon store: every query of the coupon service lives here."""

from servicekit.jobs import JOB_INDEXES  # channels part (issue 7)
from servicekit.mongo import Index
from services.coupon.store import (
    alerts,  # monitoring-and-alerts part (issue 7)
    batches,
    budgets,
    campaigns,
    claim_centre,  # channels part (issue 7)
    codes,  # codes-and-partners part
    compensation,  # compensation-and-subsidy part
    coupons,
    customers,
    drops,  # channels part (issue 7)
    holds,  # core part (issue 6)
    leases,  # core part (issue 6)
    merges,
    partner_webhooks,  # codes-and-partners part
    partners,  # codes-and-partners part
    rate_windows,
    stats,  # monitoring-and-alerts part (issue 7)
    subsidies,  # compensation-and-subsidy part
)

INDEXES: list[Index] = [
    *budgets.INDEXES,
    *campaigns.INDEXES,
    *batches.INDEXES,
    *coupons.INDEXES,
    *customers.INDEXES,
    *merges.INDEXES,
    *rate_windows.INDEXES,
]
INDEXES += [*compensation.INDEXES, *subsidies.INDEXES]  # compensation-and-subsidy part
INDEXES += [*codes.INDEXES, *partners.INDEXES, *partner_webhooks.INDEXES]  # codes-and-partners part
INDEXES += [*claim_centre.INDEXES, *drops.INDEXES, *JOB_INDEXES]  # channels part (issue 7)
INDEXES += [*alerts.INDEXES, *stats.INDEXES]  # monitoring-and-alerts part (issue 7)
INDEXES += [*leases.INDEXES, *holds.INDEXES]  # core part (issue 6)
from services.coupon.store.expiry_notices import INDEXES as EXPIRY_NOTICES  # noqa: E402

INDEXES += EXPIRY_NOTICES  # reach part (issue 8): coupons about to expire
