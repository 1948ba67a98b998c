"""Topic names. One topic per owning domain; events are keyed by customer id (or the
aggregate id when there is no customer) so one customer's events stay in order."""

from enum import StrEnum


class Topic(StrEnum):
    CUSTOMER = "scrm.customer.events"
    TAGGING = "scrm.tagging.events"
    LOYALTY = "scrm.loyalty.events"
    COUPON = "scrm.coupon.events"
    REACH = "scrm.reach.events"


#: Messages a consumer could not handle, with the reason, waiting to be replayed.
DEAD_LETTER_TOPIC = "scrm.deadletter"
