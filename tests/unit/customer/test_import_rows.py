"""CSV import rules: the header is checked before anything is imported, each row becomes
the profile `register` takes (normalised like the API), and a bad row gets a reason naming
its column."""

from __future__ import annotations

from datetime import date

import pytest

from servicekit.errors import InvalidInput
from services.customer.domain.custom_fields import FieldDefinition, FieldType
from services.customer.domain.customer import Gender, Identity, IdentityKind, SourceChannel
from services.customer.domain.imports import (
    RowError,
    check_header,
    numbered_rows,
    read_csv,
    row_cells,
    row_profile,
)

DEFINITIONS = {
    "tier": FieldDefinition(key="tier", label="Tier", type=FieldType.ENUM, options=["gold", "vip"]),
    "visits": FieldDefinition(key="visits", label="Visits", type=FieldType.NUMBER, min=0),
    "vip": FieldDefinition(key="vip", label="VIP", type=FieldType.BOOLEAN),
    "likes": FieldDefinition(
        key="likes", label="Likes", type=FieldType.MULTI_ENUM, options=["tea", "cake"]
    ),
}


def profile(**cells: str) -> dict:
    return row_profile(cells, DEFINITIONS)


def reason(**cells: str) -> str:
    with pytest.raises(RowError) as refused:
        profile(**{"display_name": "Li Lei", **cells})
    return str(refused.value)


def test_a_full_row_becomes_a_normalised_profile() -> None:
    values = profile(
        display_name="Li Lei",
        mobile="138 0013 8000",
        email="Li@Example.COM",
        gender="Female",
        birthday="1990-05-01",
        owner_id="adv-1",
        province="Zhejiang",
        street="1 West Lake Rd",
        union_id="u-123",
        store_member_no="M001",
        **{"cf.tier": "gold", "cf.visits": "3", "cf.vip": "是", "cf.likes": "tea|cake"},
    )
    assert values["display_name"] == "Li Lei" and values["mobile"] == "+8613800138000"
    assert values["email"] == "Li@example.com" and values["gender"] == Gender.FEMALE
    assert values["birthday"] == date(1990, 5, 1) and values["owner_id"] == "adv-1"
    assert values["source_channel"] == SourceChannel.IMPORT
    assert values["address"].province == "Zhejiang" and values["address"].street == "1 West Lake Rd"
    assert values["identities"] == [
        Identity(kind=IdentityKind.UNION_ID, value="u-123"),
        Identity(kind=IdentityKind.STORE_MEMBER_NO, value="M001"),
    ]
    assert values["custom_fields"] == {
        "tier": "gold",
        "visits": 3,
        "vip": True,
        "likes": ["cake", "tea"],
    }


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ({"mobile": "12345"}, "mobile: not a valid mobile number"),
        ({"mobile": '{"$gt": ""}'}, "mobile: not a valid mobile number"),
        ({"email": "nobody"}, "email: not a valid email address"),
        ({"birthday": "01/05/1990"}, "birthday: expected a date (YYYY-MM-DD)"),
        ({"gender": "robot"}, "gender: expected one of female, male, other, unknown"),
        ({"source_channel": "fax"}, "source_channel: expected one of"),
        ({"owner_id": "adv 1"}, "owner_id: 1-64 letters"),
        ({"union_id": "has space"}, "union_id: 1-128 letters"),
        ({"id_number": "123"}, "id_number: not a valid resident ID number"),
        ({"cf.tier": "bronze"}, "cf.tier: expected one of ['gold', 'vip']"),
        ({"cf.visits": "many"}, "cf.visits: expected a number"),
        ({"cf.visits": "-1"}, "cf.visits: must be between 0"),
        ({"cf.vip": "maybe"}, "cf.vip: expected true or false"),
        ({"display_name": "x" * 101}, "display_name: at most 100 characters"),
        ({"postal_code": "1" * 13}, "postal_code: String should have at most 12 characters"),
    ],
)
def test_a_bad_cell_is_a_row_error_naming_its_column(cells: dict, expected: str) -> None:
    assert reason(**cells).startswith(expected)


def test_a_row_without_a_name_is_refused() -> None:
    with pytest.raises(RowError, match="display_name: a name is required"):
        profile(mobile="13800138000")


def test_operator_shaped_cells_are_just_text() -> None:
    values = profile(display_name='{"$ne": null}')
    assert values["display_name"] == '{"$ne": null}'


def test_cells_are_trimmed_and_empty_cells_absent() -> None:
    header = ["display_name", "mobile", "email"]
    assert row_cells(header, [" Li Lei ", "", "  "]) == {"display_name": "Li Lei"}
    assert row_cells(header, ["Li Lei"]) == {"display_name": "Li Lei"}
    with pytest.raises(RowError, match="4 cells, the header 3"):
        row_cells(header, ["a", "b", "c", "d"])


def test_rows_are_numbered_as_a_spreadsheet_shows_them() -> None:
    file = read_csv('\ufeffdisplay_name,mobile\nLi,1\n\n"Han\nMeimei",2\nWei,3\n')
    assert file.header == ["display_name", "mobile"]
    assert [n for n, _ in file.rows] == [2, 4, 5]
    assert [n for n, _ in numbered_rows(file, after=4)] == [5]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["display_name", "phone"], "unknown columns: phone"),
        (["display_name", "cf.unknown", "$where"], "unknown columns: cf.unknown, $where"),
        (["display_name", "mobile", "mobile"], "columns named twice: mobile"),
        (["mobile"], "the display_name column is required"),
    ],
)
def test_a_bad_header_refuses_the_whole_file(header: list[str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("$", r"\$")):
        check_header(header, DEFINITIONS)


def test_known_columns_pass() -> None:
    check_header(["display_name", "mobile", "union_id", "street", "cf.tier"], DEFINITIONS)


@pytest.mark.parametrize("text", ["", "\n\n", "display_name\n", "display_name\n , \n"])
def test_a_file_without_rows_is_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        read_csv(text)
