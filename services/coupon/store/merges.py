"""The customer merges the coupon service followed: which coupons and partner coupons moved
to the survivor, and how many paid orders, so an unmerge moves back exactly those."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document
from servicekit.rekeying import MergeBook, MergeRecord, Moved, merge_book_indexes
from services.coupon.store.coupons import COUPONS
from services.coupon.store.partners import GIVES

MERGES = "customer_merges"
#: What a customer holds by `customer_id` and takes along into a merge: their wallet and the
#: partner coupons given to them. Redeem codes taken and compensations asked stay as records
#: of who did what.
MOVED = (COUPONS, GIVES)
INDEXES = merge_book_indexes(MERGES)


class CouponMerge(MergeRecord):
    moved: Moved
    #: The duplicate's paid orders, counted for the survivor (new versus returning).
    paid_orders: int


class MergeStore(MergeBook[CouponMerge]):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db, MERGES, CouponMerge)
