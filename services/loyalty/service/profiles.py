"""What loyalty keeps of a customer's profile: the birthday month (for the birthday bonus)."""

from __future__ import annotations

from servicekit.clock import utcnow
from servicekit.unit_of_work import Tx
from services.loyalty.service.accounts import OpenAccount, commit, earning_rule
from services.loyalty.store.points import AccountStore


async def remember_birthday_month(tx: Tx, tenant: str, customer_id: str, month: int | None) -> None:
    account = await AccountStore(tx.db).get(tenant, customer_id, session=tx.session)
    if account.birthday_month == month:
        return
    rule = await earning_rule(tx, tenant)
    changed = account.model_copy(update={"birthday_month": month})
    await commit(tx, OpenAccount(tenant, rule, changed, utcnow()))
