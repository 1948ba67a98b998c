"""Customer profiles at rest: personal fields sealed, blind indexes for exact lookup, and
uniqueness claims (a mobile, an external identity) as documents of their own, so two
concurrent registrations of one mobile cannot both succeed."""

from __future__ import annotations

import functools
import re
from datetime import datetime
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from servicekit.errors import Conflict, InvalidInput
from servicekit.mongo import Document, Index
from servicekit.pagination import PageRequest, next_cursor
from services.customer.domain.change_log import ChangeLogEntry
from services.customer.domain.customer import Customer, Identity, OwnerChange, StageChange
from services.customer.settings import CustomerSettings
from services.customer.store.crypto import PersonalDataVault

CUSTOMERS = "customers"
CLAIMS = "customer_claims"
CHANGE_LOG = "customer_change_log"
INDEXES = [
    Index(CUSTOMERS, [("tenant", 1), ("_id", 1)], name="by_tenant"),
    Index(CUSTOMERS, [("tenant", 1), ("mobile_bi", 1)], name="by_mobile"),
    Index(CUSTOMERS, [("tenant", 1), ("email_bi", 1)], name="by_email"),
    Index(CUSTOMERS, [("tenant", 1), ("identity_keys", 1)], name="by_identity"),
    Index(CUSTOMERS, [("tenant", 1), ("name_lower", 1), ("_id", 1)], name="by_name"),
    Index(CUSTOMERS, [("tenant", 1), ("lifecycle_stage", 1), ("_id", 1)], name="by_stage"),
    Index(CUSTOMERS, [("tenant", 1), ("owner_id", 1), ("_id", 1)], name="by_owner"),
    Index(CUSTOMERS, [("tenant", 1), ("registered_at", 1)], name="by_registration"),
    Index(CLAIMS, [("customer_id", 1)], name="by_customer"),
    Index(CHANGE_LOG, [("tenant", 1), ("customer_id", 1), ("at", -1)], name="by_customer"),
]
SEALED = ("mobile", "email", "id_number")


class CustomerStore:
    def __init__(self, db: AsyncDatabase[Document], vault: PersonalDataVault | None = None) -> None:
        self._customers = db[CUSTOMERS]
        self._claims = db[CLAIMS]
        self._log = db[CHANGE_LOG]
        self.vault = vault or _default_vault()

    # --- writing -------------------------------------------------------------------------

    async def add(self, customer: Customer, session: AsyncClientSession) -> None:
        await self.claim(customer, session)
        await self._customers.insert_one(self._to_doc(customer), session=session)

    async def replace(
        self, before: Customer, after: Customer, session: AsyncClientSession
    ) -> Customer:
        """Save `after` if the stored version is still `before`'s (optimistic concurrency),
        moving uniqueness claims for a changed mobile or identities."""
        await self.release_claims(before, session, keep=after)
        await self.claim(after, session, skip=before)
        after = after.model_copy(update={"version": before.version + 1})
        result = await self._customers.replace_one(
            {"_id": before.id, "tenant": before.tenant, "version": before.version},
            self._to_doc(after),
            session=session,
        )
        if result.matched_count != 1:
            raise Conflict("the customer changed meanwhile; read it again", code="version_conflict")
        return after

    async def record_stage_change(
        self, tenant: str, customer_id: str, change: StageChange, *, session: AsyncClientSession
    ) -> None:
        await self._customers.update_one(
            {"_id": customer_id, "tenant": tenant},
            {
                "$set": {"lifecycle_stage": str(change.to_stage), "updated_at": change.at},
                "$push": {"stage_history": change.model_dump(mode="json")},
                "$inc": {"version": 1},
            },
            session=session,
        )

    async def record_owner_change(
        self, tenant: str, customer_id: str, change: OwnerChange, *, session: AsyncClientSession
    ) -> bool:
        """Reassign if the owner is still `change.from_owner`; False if it moved meanwhile."""
        result = await self._customers.update_one(
            {"_id": customer_id, "tenant": tenant, "owner_id": change.from_owner},
            {
                "$set": {"owner_id": change.to_owner, "updated_at": change.at},
                "$push": {"owner_history": change.model_dump(mode="json")},
                "$inc": {"version": 1},
            },
            session=session,
        )
        return result.modified_count == 1

    async def log_change(self, entry: ChangeLogEntry, session: AsyncClientSession) -> None:
        if entry.changes:
            await self._log.insert_one(
                entry.model_dump(mode="json") | {"at": entry.at}, session=session
            )

    # --- uniqueness claims ---------------------------------------------------------------

    def _claim_ids(self, customer: Customer) -> dict[str, str]:
        """Claim id -> what it claims, for the customer's mobile and identities."""
        claims = {}
        if customer.mobile:
            bi = self.vault.blind_index("mobile", customer.tenant, customer.mobile)
            claims[f"{customer.tenant}|mobile|{bi}"] = "mobile"
        for identity in customer.identities:
            claims[f"{customer.tenant}|identity|{identity.key}"] = f"identities.{identity.kind}"
        return claims

    async def claim(
        self, customer: Customer, session: AsyncClientSession, *, skip: Customer | None = None
    ) -> None:
        held = set(self._claim_ids(skip)) if skip else set()
        for claim_id, what in self._claim_ids(customer).items():
            if claim_id in held:
                continue
            try:
                doc = {"_id": claim_id, "customer_id": customer.id, "tenant": customer.tenant}
                await self._claims.insert_one(doc, session=session)
            except DuplicateKeyError:
                raise Conflict(
                    f"another customer already has this {what.split('.')[0]}",
                    code=f"{what.split('.')[0].rstrip('s')}_taken",
                    field=what,
                ) from None

    async def release_claims(
        self, customer: Customer, session: AsyncClientSession, *, keep: Customer | None = None
    ) -> None:
        kept = set(self._claim_ids(keep)) if keep else set()
        gone = [c for c in self._claim_ids(customer) if c not in kept]
        if gone:
            await self._claims.delete_many(
                {"_id": {"$in": gone}, "customer_id": customer.id}, session=session
            )

    # --- reading -------------------------------------------------------------------------

    async def get(
        self, tenant: str, customer_id: str, *, session: AsyncClientSession | None = None
    ) -> Customer | None:
        doc = await self._customers.find_one(
            {"_id": customer_id, "tenant": tenant}, session=session
        )
        return self._from_doc(doc) if doc else None

    async def by_identity(self, tenant: str, identity: Identity) -> Customer | None:
        claim = await self._claims.find_one({"_id": f"{tenant}|identity|{identity.key}"})
        return await self.get(tenant, claim["customer_id"]) if claim else None

    async def page(
        self, tenant: str, page: PageRequest, **filters: Any
    ) -> tuple[list[Customer], str | None]:
        query = self.search_query(tenant, **filters)
        if page.after:
            query["_id"] = {"$gt": str(page.after_value("_id"))}
        cursor = self._customers.find(query).sort("_id", 1).limit(page.limit + 1)
        docs = await cursor.to_list()
        return [self._from_doc(d) for d in docs[: page.limit]], next_cursor(docs, page.limit, "_id")

    def search_query(
        self,
        tenant: str,
        *,
        mobile: str | None = None,
        email: str | None = None,
        name: str | None = None,
        lifecycle_stage: str | None = None,
        owner_id: str | None = None,
        source_channel: str | None = None,
        identity: Identity | None = None,
        registered_from: datetime | None = None,
        registered_to: datetime | None = None,
        custom_fields: dict[str, Any] | None = None,
        include_inactive: bool = False,
    ) -> Document:
        """Every filter is an exact value of a known type (validated by the route), so no
        caller input can become a query operator."""
        query: Document = {"tenant": tenant}
        if not include_inactive:
            query["status"] = "active"
        if mobile:
            query["mobile_bi"] = self.vault.blind_index("mobile", tenant, mobile)
        if email:
            query["email_bi"] = self.vault.blind_index("email", tenant, email)
        if name:
            query["name_lower"] = {"$regex": "^" + re.escape(name.casefold())}
        for field, value in (
            ("lifecycle_stage", lifecycle_stage),
            ("owner_id", owner_id),
            ("source_channel", source_channel),
        ):
            if value is not None:
                query[field] = value
        if identity:
            query["identity_keys"] = identity.key
        if registered_from or registered_to:
            span = {"$gte": registered_from, "$lt": registered_to}
            query["registered_at"] = {k: v for k, v in span.items() if v is not None}
        for key, value in (custom_fields or {}).items():
            query[f"custom_fields.{key}"] = value
        return query

    async def owned_by(self, tenant: str, owner_id: str) -> list[str]:
        cursor = self._customers.find(
            {"tenant": tenant, "owner_id": owner_id, "status": "active"}, {"_id": 1}
        ).sort("_id", 1)
        return [d["_id"] async for d in cursor]

    async def change_log(
        self, tenant: str, customer_id: str, page: PageRequest
    ) -> tuple[list[ChangeLogEntry], str | None]:
        query: Document = {"tenant": tenant, "customer_id": customer_id}
        if page.after:
            query["_id"] = {"$lt": _object_id(page.after_value("_id"))}
        docs = await self._log.find(query).sort("_id", -1).limit(page.limit + 1).to_list()
        entries = [ChangeLogEntry.model_validate(d) for d in docs[: page.limit]]
        return entries, next_cursor([{"_id": str(d["_id"])} for d in docs], page.limit, "_id")

    # --- mapping -------------------------------------------------------------------------

    def _context(self, customer_id: str, tenant: str, field: str) -> str:
        return f"{tenant}/{customer_id}/{field}"

    def _to_doc(self, customer: Customer) -> Document:
        doc = customer.model_dump(mode="json", exclude={"id"})
        doc["_id"] = customer.id
        doc["registered_at"], doc["updated_at"] = customer.registered_at, customer.updated_at
        doc["name_lower"] = customer.display_name.casefold()
        doc["identity_keys"] = [i.key for i in customer.identities]
        for field in SEALED:
            value = getattr(customer, field)
            if value is not None:
                context = self._context(customer.id, customer.tenant, field)
                doc[field] = self.vault.seal(value, context=context)
                doc[f"{field}_bi"] = self.vault.blind_index(field, customer.tenant, value)
        street = customer.address.street if customer.address else None
        if street is not None:
            context = self._context(customer.id, customer.tenant, "address.street")
            doc["address"]["street"] = self.vault.seal(street, context=context)
        return doc

    def _from_doc(self, doc: Document) -> Customer:
        data = {k: v for k, v in doc.items() if not k.endswith("_bi")}
        data["id"] = data.pop("_id")
        for field in SEALED:
            if isinstance(data.get(field), dict):
                context = self._context(data["id"], data["tenant"], field)
                data[field] = self.vault.open(data[field], context=context)
        address = data.get("address")
        if address and isinstance(address.get("street"), dict):
            context = self._context(data["id"], data["tenant"], "address.street")
            address["street"] = self.vault.open(address["street"], context=context)
        return Customer.model_validate(data)


def _object_id(value: Any) -> ObjectId:
    try:
        return ObjectId(str(value))
    except InvalidId:
        raise InvalidInput("the cursor is not one this API returned", field="cursor") from None


@functools.cache
def _default_vault() -> PersonalDataVault:
    """The vault of this process's settings, for stores built without one (event handlers
    and workers); the app hands its own in, built once from the same settings."""
    return PersonalDataVault.from_settings(CustomerSettings())


# --- merge and data subject rights (appended: reads and writes those use cases need) ----


class CustomerRecords(CustomerStore):
    """The customer store with what merge and erasure need on top: candidates by blind
    index, sealed images for merge records, releasing every claim, scrubbing the log."""

    def sealed(self, customer: Customer) -> Document:
        """The customer as stored (personal data sealed), for a record that keeps it."""
        return self._to_doc(customer)

    def unsealed(self, doc: Document) -> Customer:
        return self._from_doc(doc)

    async def candidates(self, customer: Customer) -> list[Customer]:
        """Active customers of the tenant sharing the mobile, email or a union id."""
        tenant, matches = customer.tenant, []
        if customer.mobile:
            matches.append({"mobile_bi": self.vault.blind_index("mobile", tenant, customer.mobile)})
        if customer.email:
            matches.append({"email_bi": self.vault.blind_index("email", tenant, customer.email)})
        unions = [i.key for i in customer.identities if i.kind == "union_id"]
        if unions:
            matches.append({"identity_keys": {"$in": unions}})
        if not matches:
            return []
        query = {"tenant": tenant, "status": "active", "_id": {"$ne": customer.id}, "$or": matches}
        docs = await self._customers.find(query).sort("_id", 1).limit(100).to_list()
        return [self._from_doc(d) for d in docs]

    async def release_all_claims(self, customer_id: str, session: AsyncClientSession) -> None:
        """A customer that stops acting (merged, erased) holds no mobile or identity."""
        await self._claims.delete_many({"customer_id": customer_id}, session=session)

    async def merged_into(
        self, tenant: str, survivor_id: str, session: AsyncClientSession
    ) -> list[Customer]:
        query = {"tenant": tenant, "merged_into": survivor_id, "status": "merged"}
        docs = await self._customers.find(query, session=session).to_list()
        return [self._from_doc(d) for d in docs]

    async def scrub_change_log(
        self, tenant: str, customer_id: str, session: AsyncClientSession
    ) -> None:
        """Keep who changed which fields when, drop every value (even masked ones)."""
        query = {"tenant": tenant, "customer_id": customer_id}
        async for entry in self._log.find(query, session=session):
            changes = [c | {"old": None, "new": None} for c in entry["changes"]]
            await self._log.update_one(
                {"_id": entry["_id"]}, {"$set": {"changes": changes}}, session=session
            )

    async def whole_change_log(self, tenant: str, customer_id: str) -> list[ChangeLogEntry]:
        query = {"tenant": tenant, "customer_id": customer_id}
        docs = await self._log.find(query).sort("_id", 1).to_list()
        return [ChangeLogEntry.model_validate(d) for d in docs]
