"""Tooth numbering (G20): FDI ↔ Universal, known answers and refusals."""

from __future__ import annotations

import pytest

from gateway.transfer.teeth import (
    InvalidTooth,
    ToothNumber,
    fdi_to_universal,
    normalise_system,
    parse_tooth,
    universal_to_fdi,
)

PERMANENT_FDI = [q * 10 + t for q in (1, 2, 3, 4) for t in range(1, 9)]
PRIMARY_FDI = [q * 10 + t for q in (5, 6, 7, 8) for t in range(1, 6)]


@pytest.mark.parametrize(
    ("fdi", "universal"),
    [
        (11, "8"),
        (18, "1"),
        (21, "9"),
        (28, "16"),
        (38, "17"),
        (31, "24"),
        (41, "25"),
        (48, "32"),
        (55, "A"),
        (51, "E"),
        (61, "F"),
        (65, "J"),
        (75, "K"),
        (71, "O"),
        (81, "P"),
        (85, "T"),
    ],
)
def test_known_answers(fdi: int, universal: str) -> None:
    assert fdi_to_universal(fdi) == universal
    assert universal_to_fdi(universal) == fdi
    assert parse_tooth(str(fdi), "FDI").universal == universal
    assert parse_tooth(universal, "Universal").fdi == fdi


def test_every_tooth_round_trips_and_the_mapping_is_a_bijection() -> None:
    universals = [fdi_to_universal(fdi) for fdi in PERMANENT_FDI + PRIMARY_FDI]
    assert sorted(universals[:32], key=int) == [str(n) for n in range(1, 33)]
    assert sorted(universals[32:]) == [chr(c) for c in range(ord("A"), ord("T") + 1)]
    for fdi in PERMANENT_FDI + PRIMARY_FDI:
        assert universal_to_fdi(fdi_to_universal(fdi)) == fdi


def test_tooth_number_keeps_its_source() -> None:
    tooth = parse_tooth(" #8 ", "universal")
    assert tooth == ToothNumber(11, "Universal", " #8 ")
    assert (tooth.fdi, tooth.universal, tooth.quadrant, tooth.arch, tooth.is_primary) == (11, "8", 1, "upper", False)
    assert str(tooth) == "11"
    primary = parse_tooth("k", "Universal")
    assert (primary.fdi, primary.source_value, primary.is_primary, primary.arch) == (75, "k", True, "lower")
    assert parse_tooth(36, "FDI") == ToothNumber(36, "FDI", "36")


@pytest.mark.parametrize(
    ("value", "system"),
    [
        ("10", "FDI"),
        ("19", "FDI"),
        ("49", "FDI"),
        ("56", "FDI"),
        ("86", "FDI"),
        ("90", "FDI"),
        ("0", "FDI"),
        ("8", "FDI"),
        ("111", "FDI"),
        ("1.1", "FDI"),
        ("", "FDI"),
        ("１１", "FDI"),  # full-width digits are not accepted silently
        (True, "FDI"),
        (None, "FDI"),
        (11.0, "FDI"),
        ("0", "Universal"),
        ("33", "Universal"),
        ("-1", "Universal"),
        ("U", "Universal"),
        ("AA", "Universal"),
        ("", "Universal"),
        ("11", "Palmer"),
    ],
)
def test_out_of_range_values_are_refused(value: object, system: str) -> None:
    with pytest.raises(InvalidTooth) as caught:
        parse_tooth(value, system)  # type: ignore[arg-type]
    assert caught.value.code == "invalid-tooth"
    assert caught.value.status == 422


def test_tooth_number_itself_refuses_impossible_fdi() -> None:
    with pytest.raises(InvalidTooth):
        ToothNumber(19, "FDI", "19")
    with pytest.raises(InvalidTooth):
        ToothNumber(11, "Palmer", "11")  # type: ignore[arg-type]
    with pytest.raises(InvalidTooth):
        fdi_to_universal(99)


def test_system_aliases() -> None:
    assert normalise_system("ISO 3950") == "FDI"
    assert normalise_system("fdi") == "FDI"
    assert normalise_system("UNN") == "Universal"
    assert normalise_system("ADA") == "Universal"
