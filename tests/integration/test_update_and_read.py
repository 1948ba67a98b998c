"""`update_and_read`, the kit's findAndModify for queries by `_id`, against the real store:
the document after (or before) a conditional change, None when the condition fails, upserts,
and exactly one winner among concurrent takers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection

from servicekit.mongo import Document, make_mongo_client, update_and_read


@pytest.fixture
async def tasks(infra: Any, unique: str) -> AsyncIterator[AsyncCollection[Document]]:
    client = make_mongo_client(infra.mongodb_uri, app_name="test")
    collection = client[f"kit_{unique}"]["tasks"]
    await collection.insert_one({"_id": "t1", "state": "open", "tries": 0})
    yield collection
    await client.drop_database(f"kit_{unique}")
    await client.close()


async def test_the_document_after_a_conditional_change_or_none(
    tasks: AsyncCollection[Document],
) -> None:
    taken = {"$set": {"state": "taken"}, "$inc": {"tries": 1}}
    after = await update_and_read(tasks, {"_id": "t1", "state": "open"}, taken)
    assert after == {"_id": "t1", "state": "taken", "tries": 1}
    assert await update_and_read(tasks, {"_id": "t1", "state": "open"}, taken) is None
    assert await update_and_read(tasks, {"_id": "t9"}, taken) is None
    assert await tasks.find_one({"_id": "t1"}) == after  # the failed attempts changed nothing


async def test_the_document_before_inside_a_transaction(
    infra: Any, tasks: AsyncCollection[Document]
) -> None:
    client = tasks.database.client
    async with client.start_session() as session, await session.start_transaction():
        before = await update_and_read(
            tasks, {"_id": "t1"}, {"$set": {"state": "done"}}, session=session, before=True
        )
    assert before == {"_id": "t1", "state": "open", "tries": 0}
    assert (await tasks.find_one({"_id": "t1"}))["state"] == "done"


async def test_an_upsert_answers_the_new_document(tasks: AsyncCollection[Document]) -> None:
    add = {"$inc": {"available": 2}, "$setOnInsert": {"owner": "c1"}}
    assert await update_and_read(tasks, {"_id": "q1"}, add, upsert=True) == {
        "_id": "q1",
        "available": 2,
        "owner": "c1",
    }
    assert (await update_and_read(tasks, {"_id": "q1"}, add, upsert=True))["available"] == 4


async def test_of_many_concurrent_takers_exactly_one_wins(
    tasks: AsyncCollection[Document],
) -> None:
    answers = await asyncio.gather(
        *(
            update_and_read(tasks, {"_id": "t1", "state": "open"}, {"$set": {"state": f"a{n}"}})
            for n in range(20)
        )
    )
    winners = [a for a in answers if a is not None]
    assert len(winners) == 1
    assert (await tasks.find_one({"_id": "t1"}))["state"] == winners[0]["state"]
