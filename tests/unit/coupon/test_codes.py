"""Redeem codes: the check symbol catches every single-symbol typo and every swap of two
neighbouring symbols; normalising accepts what people type; digests are keyed."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.coupon.domain.codes import (
    ALPHABET,
    BODY_LENGTH,
    LENGTH,
    MistypedCode,
    check_symbol,
    code_key,
    digest,
    display,
    is_well_formed,
    new_code,
    normalize,
)

bodies = st.text(alphabet=ALPHABET, min_size=BODY_LENGTH, max_size=BODY_LENGTH)


def sample_codes(count: int) -> list[str]:
    """Codes drawn from a fixed seed: test ids must be the same in every collecting process
    (pytest-xdist compares them), so parameters cannot come from `new_code()`."""
    draw = random.Random(7)
    bodies = ["".join(draw.choices(ALPHABET, k=BODY_LENGTH)) for _ in range(count)]
    return [body + check_symbol(body) for body in bodies]


def substitutions(code: str) -> list[str]:
    return [
        code[:i] + s + code[i + 1 :] for i in range(len(code)) for s in ALPHABET if s != code[i]
    ]


def transpositions(code: str) -> list[str]:
    return [
        code[:i] + code[i + 1] + code[i] + code[i + 2 :]
        for i in range(len(code) - 1)
        if code[i] != code[i + 1]
    ]


def test_new_codes_are_well_formed_distinct_and_of_the_alphabet() -> None:
    codes = [new_code() for _ in range(2000)]
    assert len(set(codes)) == len(codes)
    assert all(len(c) == LENGTH and is_well_formed(c) for c in codes)
    assert set("".join(codes)) <= set(ALPHABET)
    assert not set("01ILOUZ") & set(ALPHABET)


@pytest.mark.parametrize("code", sample_codes(20))
def test_every_single_substitution_is_caught(code: str) -> None:
    typos = substitutions(code)
    assert len(typos) == LENGTH * (len(ALPHABET) - 1)
    assert not any(is_well_formed(t) for t in typos)


@pytest.mark.parametrize("code", sample_codes(20))
def test_every_adjacent_transposition_is_caught(code: str) -> None:
    assert not any(is_well_formed(t) for t in transpositions(code))


@given(bodies)
def test_any_body_with_its_check_symbol_is_well_formed_and_typos_are_not(body: str) -> None:
    code = body + check_symbol(body)
    assert is_well_formed(code)
    assert not any(is_well_formed(t) for t in substitutions(code) + transpositions(code))


def test_normalize_accepts_case_spaces_and_dashes_and_refuses_typos() -> None:
    code = new_code()
    assert normalize(display(code).lower()) == code
    assert normalize(" " + " ".join(display(code).split("-")) + " ") == code
    for bad in ["", code[:-1], code + "2", code[:3] + "O" + code[4:], "{'$gt': ''}"]:
        with pytest.raises(MistypedCode):
            normalize(bad)
    with pytest.raises(MistypedCode):
        normalize(substitutions(code)[0])


def test_digest_is_keyed_and_tenanted() -> None:
    code = new_code()
    key = code_key("service secret")
    assert digest(key, "t1", code) == digest(code_key("service secret"), "t1", code)
    assert digest(key, "t1", code) != digest(key, "t2", code)
    assert digest(key, "t1", code) != digest(code_key("another secret"), "t1", code)
    assert code not in digest(key, "t1", code)
