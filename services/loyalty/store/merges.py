"""What each customer merge moved, so an unmerge can move it back (the grants, card
holdings and order earnings are re-keyed with `servicekit.rekeying`)."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from servicekit.mongo import Document
from servicekit.rekeying import MergeBook, Moved, merge_book_indexes
from servicekit.rekeying import MergeRecord as KitMergeRecord
from services.loyalty.store.benefits import GRANTS, HOLDINGS
from services.loyalty.store.points import ORDER_EARNINGS

MERGES = "merges"
#: Collections whose documents belong to a customer by `customer_id` and follow a merge.
REKEYED = (GRANTS, HOLDINGS, ORDER_EARNINGS)
INDEXES = merge_book_indexes(MERGES)


class MergeRecord(KitMergeRecord):
    lot_ids: list[str]
    pending_ids: list[str]
    principal: int
    bonus: int
    growth_by_day: dict[str, int]
    #: Ids (`_id`) of the re-keyed documents, by collection.
    rekeyed: Moved


class MergeStore(MergeBook[MergeRecord]):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        super().__init__(db, MERGES, MergeRecord)
