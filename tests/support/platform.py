"""Every service of the platform, by name: its app factory and settings class."""

from __future__ import annotations

from services.coupon.main import create_app as coupon_app
from services.coupon.settings import CouponSettings
from services.customer.main import create_app as customer_app
from services.customer.settings import CustomerSettings
from services.loyalty.main import create_app as loyalty_app
from services.loyalty.settings import LoyaltySettings
from services.reach.main import create_app as reach_app
from services.reach.settings import ReachSettings
from services.tagging.main import create_app as tagging_app
from services.tagging.settings import TaggingSettings

SERVICES = {
    "customer": (customer_app, CustomerSettings),
    "tagging": (tagging_app, TaggingSettings),
    "loyalty": (loyalty_app, LoyaltySettings),
    "coupon": (coupon_app, CouponSettings),
    "reach": (reach_app, ReachSettings),
}
