"""Tooth numbering (G20 歯科技工録: the teeth a design is for): FDI (ISO 3950) ↔ Universal, permanent and primary.

FDI is the canonical form; a `ToothNumber` also keeps the system and the text it was read from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.errors import DentGateError

ToothSystem = Literal["FDI", "Universal"]

# Universal 1..32 run from the upper right third molar (FDI 18) round the upper arch to 28, then from the
# lower left third molar (FDI 38) round the lower arch to 48; letters A..T do the same for primary teeth.
_PERMANENT_FDI_BY_UNIVERSAL: dict[int, int] = {
    **{u: 19 - u for u in range(1, 9)},  # 1..8 -> 18..11
    **{u: 12 + u for u in range(9, 17)},  # 9..16 -> 21..28
    **{u: 55 - u for u in range(17, 25)},  # 17..24 -> 38..31
    **{u: 16 + u for u in range(25, 33)},  # 25..32 -> 41..48
}
_PRIMARY_FDI_BY_UNIVERSAL: dict[str, int] = {
    **{chr(ord("A") + i): 55 - i for i in range(5)},  # A..E -> 55..51
    **{chr(ord("F") + i): 61 + i for i in range(5)},  # F..J -> 61..65
    **{chr(ord("K") + i): 75 - i for i in range(5)},  # K..O -> 75..71
    **{chr(ord("P") + i): 81 + i for i in range(5)},  # P..T -> 81..85
}
_UNIVERSAL_BY_FDI: dict[int, str] = {
    **{fdi: str(u) for u, fdi in _PERMANENT_FDI_BY_UNIVERSAL.items()},
    **{fdi: letter for letter, fdi in _PRIMARY_FDI_BY_UNIVERSAL.items()},
}
_SYSTEM_ALIASES: dict[str, ToothSystem] = {
    "fdi": "FDI",
    "iso": "FDI",
    "iso3950": "FDI",
    "universal": "Universal",
    "unn": "Universal",
    "ada": "Universal",
}


class InvalidTooth(DentGateError):
    code = "invalid-tooth"
    status = 422
    title = "Invalid tooth number"


@dataclass(frozen=True)
class ToothNumber:
    """One tooth, canonically by its FDI number, with the system and text it was given in."""

    fdi: int
    source_system: ToothSystem
    source_value: str

    def __post_init__(self) -> None:
        if type(self.fdi) is not int or self.fdi not in _UNIVERSAL_BY_FDI:
            raise InvalidTooth(f"{self.fdi!r} is not an FDI tooth number (11-48 permanent, 51-85 primary)")
        if self.source_system not in ("FDI", "Universal"):
            raise InvalidTooth(f"unknown tooth numbering system {self.source_system!r}")

    @property
    def universal(self) -> str:
        """The Universal (US) designation: "1".."32" for permanent teeth, "A".."T" for primary teeth."""
        return _UNIVERSAL_BY_FDI[self.fdi]

    @property
    def is_primary(self) -> bool:
        return self.fdi >= 51

    @property
    def quadrant(self) -> int:
        """The FDI quadrant: 1-4 permanent, 5-8 primary (1 and 5 are upper right)."""
        return self.fdi // 10

    @property
    def arch(self) -> Literal["upper", "lower"]:
        return "upper" if self.quadrant in (1, 2, 5, 6) else "lower"

    def __str__(self) -> str:
        return str(self.fdi)


def normalise_system(system: str) -> ToothSystem:
    """The canonical name of a numbering system ("FDI", "ISO" -> "FDI"; "Universal", "UNN", "ADA" -> "Universal")."""
    key = "".join(system.split()).replace("-", "").lower() if isinstance(system, str) else ""
    if key not in _SYSTEM_ALIASES:
        raise InvalidTooth(f"unknown tooth numbering system {system!r} (expected FDI or Universal)")
    return _SYSTEM_ALIASES[key]


def fdi_to_universal(fdi: int) -> str:
    """The Universal designation of an FDI tooth number; InvalidTooth if there is no such tooth."""
    return ToothNumber(fdi, "FDI", str(fdi)).universal


def universal_to_fdi(value: str | int) -> int:
    """The FDI number of a Universal designation ("8", 8, "#8", "A"); InvalidTooth if there is no such tooth."""
    return parse_tooth(value, "Universal").fdi


def parse_tooth(value: str | int, system: ToothSystem | str) -> ToothNumber:
    """Read a tooth number written in `system`; InvalidTooth for anything that is not a tooth of that system."""
    canonical = normalise_system(system)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidTooth(f"a tooth number must be text or an integer, not {type(value).__name__}")
    source = str(value)
    text = source.strip()
    if canonical == "FDI":
        if not (text.isascii() and text.isdigit() and len(text) == 2):
            raise InvalidTooth(f"{source!r} is not an FDI tooth number (two digits: quadrant, then tooth)")
        fdi = int(text)
        if fdi not in _UNIVERSAL_BY_FDI:
            raise InvalidTooth(f"{source!r} is not an FDI tooth number (11-48 permanent, 51-85 primary)")
        return ToothNumber(fdi, "FDI", source)
    text = text.removeprefix("#").strip()
    if text.isascii() and text.isdigit() and 1 <= len(text) <= 2:
        number = int(text)
        if number in _PERMANENT_FDI_BY_UNIVERSAL:
            return ToothNumber(_PERMANENT_FDI_BY_UNIVERSAL[number], "Universal", source)
    elif len(text) == 1 and text.upper() in _PRIMARY_FDI_BY_UNIVERSAL:
        return ToothNumber(_PRIMARY_FDI_BY_UNIVERSAL[text.upper()], "Universal", source)
    raise InvalidTooth(f"{source!r} is not a Universal tooth number (1-32 permanent, A-T primary)")
