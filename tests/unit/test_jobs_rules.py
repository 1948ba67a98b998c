"""Pure parts of jobs: progress is gathered and written in batches, the kept errors stay
within their cap across runs, and the last checkpoint given wins."""

from __future__ import annotations

from servicekit.jobs import FLUSH_ITEMS, FLUSH_SECONDS, MAX_ERRORS, ItemError, ProgressBuffer


def add(buffer: ProgressBuffer, *, errors: int = 0, checkpoint: int | None = None) -> None:
    buffer.add(
        processed=1,
        succeeded=int(not errors),
        failed=int(bool(errors)),
        errors=[ItemError(item=f"i{n}", reason="bad") for n in range(errors)],
        checkpoint=checkpoint,
        has_checkpoint=checkpoint is not None,
    )


def test_a_write_is_due_after_enough_items() -> None:
    buffer = ProgressBuffer(errors_kept=0, now=0.0)
    for n in range(FLUSH_ITEMS - 1):
        add(buffer, checkpoint=n)
    assert not buffer.due(now=0.1)
    add(buffer, checkpoint=FLUSH_ITEMS - 1)
    assert buffer.due(now=0.1)


def test_a_write_is_due_after_enough_time() -> None:
    buffer = ProgressBuffer(errors_kept=0, now=10.0)
    add(buffer)
    assert not buffer.due(now=10.0 + FLUSH_SECONDS / 2)
    assert buffer.due(now=10.0 + FLUSH_SECONDS)


def test_taking_empties_the_buffer_and_keeps_the_last_checkpoint() -> None:
    buffer = ProgressBuffer(errors_kept=0, now=0.0)
    add(buffer, checkpoint=1)
    add(buffer, errors=1)
    add(buffer, checkpoint=3)
    taken = buffer.take(now=1.0)
    assert (taken.processed, taken.succeeded, taken.failed) == (3, 2, 1)
    assert taken.checkpoint == 3 and taken.has_checkpoint and len(taken.errors) == 1
    assert buffer.pending.empty and buffer.last_flush == 1.0
    assert not buffer.take(now=2.0).has_checkpoint


def test_errors_stop_at_the_cap_counting_those_kept_by_earlier_runs() -> None:
    buffer = ProgressBuffer(errors_kept=MAX_ERRORS - 3, now=0.0)
    add(buffer, errors=2)
    assert len(buffer.take(now=0.0).errors) == 2
    add(buffer, errors=5)
    taken = buffer.take(now=0.0)
    assert len(taken.errors) == 1 and taken.failed == 1
    add(buffer, errors=1)
    assert buffer.take(now=0.0).errors == [] and buffer.errors_kept == MAX_ERRORS
