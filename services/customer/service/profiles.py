"""Customer use cases: load, apply the domain's rules, save with the events that follow."""

from __future__ import annotations

from contracts.customer import CustomerRegistered
from servicekit.clock import utcnow
from servicekit.errors import NotFound
from servicekit.pagination import PageRequest
from servicekit.unit_of_work import Tx, UnitOfWork
from services.customer.domain import customer as rules
from services.customer.domain.customer import Customer, SourceChannel
from services.customer.store import CustomerStore


class CustomerService:
    def __init__(self, uow: UnitOfWork, store: CustomerStore) -> None:
        self.uow = uow
        self.store = store

    async def register(
        self, tenant: str, *, display_name: str, source_channel: SourceChannel
    ) -> Customer:
        customer = rules.register(
            tenant=tenant,
            display_name=display_name,
            source_channel=source_channel,
            at=utcnow(),
        )

        async def work(tx: Tx) -> None:
            await self.store.add(customer, tx.session)
            await tx.emit(
                CustomerRegistered(
                    customer_id=customer.id,
                    display_name=customer.display_name,
                    source_channel=customer.source_channel,
                    lifecycle_stage=customer.lifecycle_stage,
                    registered_at=customer.registered_at,
                ),
                tenant=tenant,
            )

        await self.uow.run(work)
        return customer

    async def get(self, tenant: str, customer_id: str) -> Customer:
        customer = await self.store.get(tenant, customer_id)
        if customer is None:
            raise NotFound(f"no customer {customer_id}", code="customer_not_found")
        return customer

    async def page(self, tenant: str, page: PageRequest) -> tuple[list[Customer], str | None]:
        return await self.store.page(tenant, page)
