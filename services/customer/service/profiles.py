"""Profile use cases: register, read, search, update, stage and owner changes, identities."""

from __future__ import annotations

from typing import Any

from contracts.customer import (
    CustomerProfileChanged,
    CustomerRegistered,
    LifecycleStageChanged,
    OwnerChanged,
)
from servicekit.clock import utcnow
from servicekit.context import Actor
from servicekit.errors import Conflict, InvalidInput, NotFound
from servicekit.pagination import PageRequest
from servicekit.unit_of_work import Tx, UnitOfWork
from services.customer.domain import lifecycle
from services.customer.domain.change_log import ChangeLogEntry, FieldChange, diff
from services.customer.domain.custom_fields import search_value
from services.customer.domain.customer import (
    Customer,
    Identity,
    LifecycleStage,
    OwnerChange,
    SourceChannel,
    register,
)
from services.customer.domain.profile_input import apply_values, profile_values
from services.customer.store.custom_fields import CustomFieldStore
from services.customer.store.customers import CustomerStore

#: Non-personal attributes other services may read from profile events.
EVENT_ATTRIBUTES = ("gender", "source_channel", "lifecycle_stage", "owner_id")


class CustomerService:
    def __init__(self, uow: UnitOfWork, store: CustomerStore, fields: CustomFieldStore) -> None:
        self.uow = uow
        self.store = store
        self.fields = fields

    async def register(
        self,
        tenant: str,
        *,
        display_name: str,
        source_channel: SourceChannel,
        actor: Actor | None = None,
        **profile: Any,
    ) -> Customer:
        actor = actor or Actor()
        values = profile_values(profile, await self.fields.definitions(tenant), partial=False)
        at = utcnow()
        customer = register(
            tenant=tenant,
            display_name=display_name,
            source_channel=source_channel,
            at=at,
            by=actor.id,
            **values,
        )

        async def work(tx: Tx) -> None:
            await self.store.add(customer, tx.session)
            created = [FieldChange(field="status", old=None, new="active")]
            await self._log(tx, customer, actor, "registered", created)
            await tx.emit(_registered(customer), tenant=tenant)

        await self.uow.run(work)
        return customer

    async def get(self, tenant: str, customer_id: str) -> Customer:
        customer = await self.store.get(tenant, customer_id)
        if customer is None:
            raise NotFound(f"no customer {customer_id}", code="customer_not_found")
        return customer

    async def update(
        self, tenant: str, customer_id: str, changes: dict[str, Any], *, actor: Actor
    ) -> Customer:
        """Apply the fields given; the change log and event name what changed."""
        values = profile_values(changes, await self.fields.definitions(tenant), partial=True)

        async def work(tx: Tx) -> Customer:
            before = await self._active(tenant, customer_id, tx)
            after = apply_values(before, values, at=utcnow())
            changed = diff(before, after)
            if not changed:
                return before
            saved = await self.store.replace(before, after, tx.session)
            await self._log(tx, saved, actor, "updated", changed)
            await tx.emit(_profile_changed(saved, changed, actor), tenant=tenant)
            return saved

        return await self.uow.run(work)

    async def change_stage(
        self, tenant: str, customer_id: str, to_stage: LifecycleStage, *, reason: str, actor: Actor
    ) -> Customer:
        async def work(tx: Tx) -> Customer:
            customer = await self._active(tenant, customer_id, tx)
            change = lifecycle.stage_change(
                customer, to_stage, reason=reason, at=utcnow(), by=actor.id
            )
            await self.store.record_stage_change(tenant, customer_id, change, session=tx.session)
            moved = [FieldChange(field="lifecycle_stage", old=change.from_stage, new=to_stage)]
            await self._log(tx, customer, actor, reason, moved)
            await tx.emit(
                LifecycleStageChanged(
                    customer_id=customer_id,
                    from_stage=change.from_stage,
                    to_stage=change.to_stage,
                    reason=reason,
                    changed_at=change.at,
                ),
                tenant=tenant,
            )
            return await self._active(tenant, customer_id, tx)

        return await self.uow.run(work)

    async def assign_owner(
        self, tenant: str, customer_id: str, to_owner: str | None, *, reason: str, actor: Actor
    ) -> Customer:
        async def work(tx: Tx) -> Customer:
            customer = await self._active(tenant, customer_id, tx)
            await self.reassign(tx, customer, to_owner, reason=reason, actor=actor)
            return await self._active(tenant, customer_id, tx)

        return await self.uow.run(work)

    async def reassign(
        self, tx: Tx, customer: Customer, to_owner: str | None, *, reason: str, actor: Actor
    ) -> bool:
        """In the caller's transaction: move the customer to `to_owner` with history.
        False when they already belong to `to_owner`."""
        if customer.owner_id == to_owner:
            return False
        change = OwnerChange(
            from_owner=customer.owner_id, to_owner=to_owner, reason=reason, at=utcnow(), by=actor.id
        )
        moved = await self.store.record_owner_change(
            customer.tenant, customer.id, change, session=tx.session
        )
        if not moved:
            raise Conflict("the customer's owner changed meanwhile", code="owner_changed")
        owner = [FieldChange(field="owner_id", old=change.from_owner, new=to_owner)]
        await self._log(tx, customer, actor, reason, owner)
        await tx.emit(
            OwnerChanged(
                customer_id=customer.id,
                from_owner=change.from_owner,
                to_owner=to_owner,
                reason=reason,
                changed_by=actor.id,
                changed_at=change.at,
            ),
            tenant=customer.tenant,
        )
        return True

    async def add_identity(
        self, tenant: str, customer_id: str, identity: Identity, *, actor: Actor
    ) -> Customer:
        customer = await self.get(tenant, customer_id)
        if any(i.key == identity.key for i in customer.identities):
            return customer
        identities = [*customer.identities, identity]
        return await self._save_identities(tenant, customer_id, identities, actor=actor)

    async def remove_identity(
        self, tenant: str, customer_id: str, identity: Identity, *, actor: Actor
    ) -> Customer:
        customer = await self.get(tenant, customer_id)
        identities = [i for i in customer.identities if i.key != identity.key]
        if len(identities) == len(customer.identities):
            raise NotFound("the customer has no such identity", code="identity_not_found")
        return await self._save_identities(tenant, customer_id, identities, actor=actor)

    async def _save_identities(
        self, tenant: str, customer_id: str, identities: list[Identity], *, actor: Actor
    ) -> Customer:
        async def work(tx: Tx) -> Customer:
            before = await self._active(tenant, customer_id, tx)
            after = before.model_copy(update={"identities": identities, "updated_at": utcnow()})
            saved = await self.store.replace(before, after, tx.session)
            changed = diff(before, after)
            await self._log(tx, saved, actor, "identities", changed)
            await tx.emit(_profile_changed(saved, changed, actor), tenant=tenant)
            return saved

        return await self.uow.run(work)

    async def by_identity(self, tenant: str, identity: Identity) -> Customer:
        customer = await self.store.by_identity(tenant, identity)
        if customer is None:
            raise NotFound("no customer has this identity", code="customer_not_found")
        return customer

    async def search(
        self, tenant: str, page: PageRequest, *, custom_fields: dict[str, str], **filters: Any
    ) -> tuple[list[Customer], str | None]:
        typed = await self._custom_field_filters(tenant, custom_fields)
        return await self.store.page(tenant, page, custom_fields=typed, **filters)

    async def _custom_field_filters(self, tenant: str, raw: dict[str, str]) -> dict[str, Any]:

        if not raw:
            return {}
        definitions = await self.fields.definitions(tenant)
        typed = {}
        for key, value in raw.items():
            definition = definitions.get(key)
            if definition is None or not definition.searchable:
                raise InvalidInput("not a searchable custom field", field=f"cf.{key}")
            typed[key] = search_value(definition, value)
        return typed

    async def _active(self, tenant: str, customer_id: str, tx: Tx) -> Customer:
        customer = await self.store.get(tenant, customer_id, session=tx.session)
        if customer is None:
            raise NotFound(f"no customer {customer_id}", code="customer_not_found")
        if customer.status != "active":
            raise Conflict(
                f"the customer is {customer.status} and cannot change", code="customer_inactive"
            )
        return customer

    async def _log(
        self, tx: Tx, customer: Customer, actor: Actor, reason: str, changes: list[FieldChange]
    ) -> None:
        entry = ChangeLogEntry(
            customer_id=customer.id,
            tenant=customer.tenant,
            at=utcnow(),
            by=actor.id,
            reason=reason,
            changes=changes,
        )
        await self.store.log_change(entry, tx.session)


def _registered(customer: Customer) -> CustomerRegistered:
    return CustomerRegistered(
        customer_id=customer.id,
        display_name=customer.display_name,
        source_channel=customer.source_channel,
        lifecycle_stage=customer.lifecycle_stage,
        registered_at=customer.registered_at,
        owner_id=customer.owner_id,
    )


def _profile_changed(
    customer: Customer, changed: list[FieldChange], actor: Actor
) -> CustomerProfileChanged:
    attributes: dict[str, Any] = {a: getattr(customer, a) for a in EVENT_ATTRIBUTES}
    attributes["birthday_month"] = customer.birthday.month if customer.birthday else None
    attributes.update({f"custom_fields.{k}": v for k, v in customer.custom_fields.items()})
    return CustomerProfileChanged(
        customer_id=customer.id,
        changed_fields=[c.field for c in changed],
        changed_by=actor.id,
        changed_at=customer.updated_at,
        attributes={k: (str(v) if hasattr(v, "value") else v) for k, v in attributes.items()},
    )
