"""CSV import rules: which columns a file may have, and how one row becomes the profile
`CustomerService.register` takes. Pure: no I/O.

Every cell is text: a value shaped like a query operator (`{"$ne": null}`) is just a string,
checked against the column's type like any other. Rows are numbered as a spreadsheet shows
them: the header is row 1, the first customer row 2."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, TypeVar

from pydantic import ValidationError

from servicekit.errors import InvalidInput
from services.customer.domain.custom_fields import FieldDefinition, FieldType
from services.customer.domain.customer import Address, Gender, Identity, IdentityKind, SourceChannel
from services.customer.domain.profile_input import profile_values

PROFILE_COLUMNS = ("display_name", "mobile", "email", "gender", "birthday", "source_channel")
PROFILE_COLUMNS += ("owner_id", "id_number")
ADDRESS_COLUMNS = ("province", "city", "district", "street", "postal_code")
IDENTITY_COLUMNS = tuple(str(k) for k in IdentityKind)
CUSTOM_PREFIX = "cf."
KNOWN_COLUMNS = frozenset(PROFILE_COLUMNS + ADDRESS_COLUMNS + IDENTITY_COLUMNS)
MAX_NAME = 100
STAFF_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
#: Separators of a multi-enum cell ("red|blue").
MULTI_SEPARATOR = re.compile(r"\s*[|;]\s*")
TRUE, FALSE = frozenset({"true", "1", "yes", "是"}), frozenset({"false", "0", "no", "否"})


E = TypeVar("E")


class RowError(Exception):
    """One row refused, with a reason the operator can act on (`mobile: ...`)."""


@dataclass(frozen=True)
class CsvFile:
    header: list[str]
    #: (row number, cells) of every non-blank data row.
    rows: list[tuple[int, list[str]]]


def read_csv(text: str) -> CsvFile:
    """Split the file into its header and rows (a quoted cell may span lines)."""
    try:
        records = list(csv.reader(io.StringIO(text.lstrip("\ufeff"), newline="")))
    except csv.Error as exc:
        raise InvalidInput(f"not a readable CSV file: {exc}", field="body") from None
    if not records or not any(c.strip() for c in records[0]):
        raise InvalidInput("the file has no header row", field="body")
    header = [c.strip() for c in records[0]]
    rows = [
        (n, cells) for n, cells in enumerate(records[1:], start=2) if any(c.strip() for c in cells)
    ]
    if not rows:
        raise InvalidInput("the file has no customer rows", field="body")
    return CsvFile(header=header, rows=rows)


def check_header(header: list[str], definitions: dict[str, FieldDefinition]) -> None:
    """Refuse the whole file before any row is imported: an unknown column would silently
    drop data the operator meant to load."""
    unknown = [c for c in header if c not in KNOWN_COLUMNS and not _custom_column(c, definitions)]
    if unknown:
        raise InvalidInput(f"unknown columns: {', '.join(unknown)}", field="header")
    duplicates = sorted({c for c in header if header.count(c) > 1})
    if duplicates:
        raise InvalidInput(f"columns named twice: {', '.join(duplicates)}", field="header")
    if "display_name" not in header:
        raise InvalidInput("the display_name column is required", field="header")


def _custom_column(column: str, definitions: dict[str, FieldDefinition]) -> bool:
    return column.startswith(CUSTOM_PREFIX) and column[len(CUSTOM_PREFIX) :] in definitions


def row_cells(header: list[str], cells: list[str]) -> dict[str, str]:
    """The row's non-empty cells by column; a row wider than the header is refused."""
    if len(cells) > len(header):
        raise RowError(f"the row has {len(cells)} cells, the header {len(header)}")
    return {col: cell.strip() for col, cell in zip(header, cells, strict=False) if cell.strip()}


def row_profile(cells: dict[str, str], definitions: dict[str, FieldDefinition]) -> dict[str, Any]:
    """The keyword arguments of `CustomerService.register` for one row, validated with the
    same normalisers and custom field rules as the API; raises `RowError`."""
    try:
        given = _profile(cells, definitions)
        values = profile_values(given, definitions, partial=False)
    except InvalidInput as exc:
        raise RowError(f"{_column(exc)}: {exc.detail}") from None
    return values


def _profile(cells: dict[str, str], definitions: dict[str, FieldDefinition]) -> dict[str, Any]:
    profile: dict[str, Any] = {
        "display_name": _name(cells.get("display_name")),
        "source_channel": _choice(SourceChannel, cells.get("source_channel"), "source_channel")
        or SourceChannel.IMPORT,
        "gender": _choice(Gender, cells.get("gender"), "gender") or Gender.UNKNOWN,
        "birthday": _date(cells.get("birthday"), "birthday"),
        "identities": _identities(cells),
        "address": _address(cells),
        "custom_fields": _custom_values(cells, definitions),
    }
    for column in ("mobile", "email", "id_number"):
        profile[column] = cells.get(column)
    profile["owner_id"] = _owner(cells.get("owner_id"))
    return profile


def _name(value: str | None) -> str:
    if not value:
        raise InvalidInput("a name is required", field="display_name")
    if len(value) > MAX_NAME:
        raise InvalidInput(f"at most {MAX_NAME} characters", field="display_name")
    return value


def _choice(kind: type[E], value: str | None, field: str) -> E | None:
    if value is None:
        return None
    try:
        return kind(value.lower())  # type: ignore[call-arg]
    except ValueError:
        options = ", ".join(str(o) for o in kind)  # type: ignore[attr-defined]
        raise InvalidInput(f"expected one of {options}", field=field) from None


def _date(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput("expected a date (YYYY-MM-DD)", field=field) from None


def _owner(value: str | None) -> str | None:
    if value is not None and not STAFF_ID.fullmatch(value):
        raise InvalidInput("1-64 letters, digits or _.:@-", field="owner_id")
    return value


def _identities(cells: dict[str, str]) -> list[Identity]:
    identities = []
    for kind in IDENTITY_COLUMNS:
        if kind in cells:
            try:
                identities.append(Identity(kind=IdentityKind(kind), value=cells[kind]))
            except ValidationError:
                raise InvalidInput("1-128 letters, digits or _-.:@", field=kind) from None
    return identities


def _address(cells: dict[str, str]) -> Address | None:
    given = {c: cells[c] for c in ADDRESS_COLUMNS if c in cells}
    if not given:
        return None
    try:
        return Address(**given)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInput(first["msg"], field=str(first["loc"][0])) from None


def _custom_values(
    cells: dict[str, str], definitions: dict[str, FieldDefinition]
) -> dict[str, Any]:
    values = {}
    for column, cell in cells.items():
        if column.startswith(CUSTOM_PREFIX):
            key = column[len(CUSTOM_PREFIX) :]
            values[key] = custom_cell(definitions[key], cell)
    return values


def custom_cell(definition: FieldDefinition, cell: str) -> Any:
    """A cell converted to the type the field's validation expects; the validation itself
    (range, options, pattern) stays the profile's."""
    field = f"custom_fields.{definition.key}"
    if definition.type == FieldType.NUMBER:
        try:
            number = float(cell)
        except ValueError:
            raise InvalidInput("expected a number", field=field) from None
        return int(number) if number.is_integer() else number
    if definition.type == FieldType.BOOLEAN:
        if cell.lower() not in TRUE | FALSE:
            raise InvalidInput("expected true or false", field=field)
        return cell.lower() in TRUE
    if definition.type == FieldType.MULTI_ENUM:
        return [v for v in MULTI_SEPARATOR.split(cell) if v]
    return cell


def _column(exc: InvalidInput) -> str:
    """The CSV column an error is about (`custom_fields.tier` was column `cf.tier`)."""
    errors = exc.extra.get("errors") or [{"field": "row"}]
    field = str(errors[0]["field"])
    return CUSTOM_PREFIX + field.split(".", 1)[1] if field.startswith("custom_fields.") else field


def numbered_rows(file: CsvFile, after: int) -> Iterator[tuple[int, list[str]]]:
    """The rows left to import when the rows up to `after` are done."""
    return ((n, cells) for n, cells in file.rows if n > after)
