"""Custom fields (自定义资料项): tenant-defined profile attributes with a type and validation."""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, model_validator

from servicekit.errors import InvalidInput

MAX_FIELDS_PER_TENANT = 100


class FieldType(StrEnum):
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    ENUM = "enum"
    MULTI_ENUM = "multi_enum"
    BOOLEAN = "boolean"


class FieldDefinition(BaseModel):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    label: str = Field(min_length=1, max_length=60)
    type: FieldType
    required: bool = False
    searchable: bool = False
    options: list[str] = Field(default_factory=list, max_length=200)
    min: float | None = None
    max: float | None = None
    max_length: int = Field(default=200, ge=1, le=2000)
    pattern: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> FieldDefinition:
        if self.type in {FieldType.ENUM, FieldType.MULTI_ENUM} and not self.options:
            raise ValueError("an enum field needs options")
        if self.type not in {FieldType.ENUM, FieldType.MULTI_ENUM} and self.options:
            raise ValueError("only enum fields have options")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a regular expression: {exc}") from None
        return self


def validate_values(
    definitions: dict[str, FieldDefinition], values: dict[str, Any], *, partial: bool
) -> dict[str, Any]:
    """Values checked and converted to their stored form. `partial` (an update) skips the
    required check for fields not given; None clears a non-required field."""
    unknown = sorted(set(values) - set(definitions))
    if unknown:
        raise InvalidInput(f"no custom field {unknown[0]!r}", field=f"custom_fields.{unknown[0]}")
    checked = {key: _value(definitions[key], value) for key, value in values.items()}
    if not partial:
        for key, definition in definitions.items():
            if definition.required and checked.get(key) is None:
                raise InvalidInput("this field is required", field=f"custom_fields.{key}")
    return checked


def _value(definition: FieldDefinition, value: Any) -> Any:
    field = f"custom_fields.{definition.key}"
    if value is None:
        if definition.required:
            raise InvalidInput("this field is required", field=field)
        return None
    check = _CHECKS[definition.type]
    return check(definition, value, field)


def _text(d: FieldDefinition, value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput("expected text", field=field)
    if len(value) > d.max_length:
        raise InvalidInput(f"at most {d.max_length} characters", field=field)
    if d.pattern and not re.fullmatch(d.pattern, value):
        raise InvalidInput("does not match the field's pattern", field=field)
    return value


def _number(d: FieldDefinition, value: Any, field: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput("expected a number", field=field)
    if (d.min is not None and value < d.min) or (d.max is not None and value > d.max):
        raise InvalidInput(f"must be between {d.min} and {d.max}", field=field)
    return value


def _date(d: FieldDefinition, value: Any, field: str) -> str:
    try:
        return date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise InvalidInput("expected a date (YYYY-MM-DD)", field=field) from None


def _enum(d: FieldDefinition, value: Any, field: str) -> str:
    if value not in d.options:
        raise InvalidInput(f"expected one of {d.options}", field=field)
    return value


def _multi_enum(d: FieldDefinition, value: Any, field: str) -> list[str]:
    if not isinstance(value, list) or any(v not in d.options for v in value):
        raise InvalidInput(f"expected a list of {d.options}", field=field)
    return sorted(set(value))


def _boolean(d: FieldDefinition, value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("expected true or false", field=field)
    return value


_CHECKS = {
    FieldType.TEXT: _text,
    FieldType.NUMBER: _number,
    FieldType.DATE: _date,
    FieldType.ENUM: _enum,
    FieldType.MULTI_ENUM: _multi_enum,
    FieldType.BOOLEAN: _boolean,
}


def search_value(definition: FieldDefinition, raw: str) -> Any:
    """A query-string value converted to the field's stored form, for exact search."""
    field = f"cf.{definition.key}"
    if definition.type == FieldType.NUMBER:
        try:
            number = float(raw)
        except ValueError:
            raise InvalidInput("expected a number", field=field) from None
        return int(number) if number.is_integer() else number
    if definition.type == FieldType.BOOLEAN:
        if raw not in {"true", "false"}:
            raise InvalidInput("expected true or false", field=field)
        return raw == "true"
    if definition.type == FieldType.DATE:
        return _date(definition, raw, field)
    if definition.type in {FieldType.ENUM, FieldType.MULTI_ENUM}:
        return _enum(definition, raw, field)
    return raw
