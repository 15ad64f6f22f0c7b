"""What a bundle's CAD companions say about the design (G20 歯科技工録), filled in where the technician gave nothing.

An exocad `.constructionInfo` or a 3Shape order XML among the files names the teeth (kept in the numbering
the file uses, with FDI beside it), the materials and the case (3Shape order id, else exocad ProjectGUID).
What the technician typed always wins; companion teeth that disagree with typed ones are reported as a warning.
The companions are read with `gateway.transfer.companions` only (no DTD, no entities, size-capped).
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from clients.uploader import DesignRequest
from gateway.errors import DentGateError
from gateway.transfer.companions import (
    MAX_COMPANION_BYTES,
    InvalidCompanion,
    read_3shape_order,
    read_exocad_construction_info,
)
from gateway.transfer.formats import SNIFF_BYTES, MediaKind, UnsupportedFile, classify
from gateway.transfer.teeth import ToothNumber, parse_tooth

MAX_CASE_CHARS = 64  # the manifest's case_reference
MAX_MATERIAL_CHARS = 100  # the manifest's material


@dataclass(frozen=True)
class CompanionFacts:
    """A bundle's case, teeth and material by its companions (the first to name each, in file order).

    As returned by `fill_request`: only what was filled in (None / () where the technician's value was kept).
    """

    case_reference: str | None = None
    teeth: tuple[ToothNumber, ...] = ()
    material: str | None = None
    sources: tuple[str, ...] = ()  # the companion files read
    warnings: tuple[str, ...] = ()

    def describe(self) -> str | None:
        """What was filled, in one line for the technician ("case …, teeth …, material … (from FILE)")."""
        parts = [f"case {self.case_reference}"] if self.case_reference else []
        if self.teeth:
            parts.append("teeth " + ", ".join(_shown(t) for t in self.teeth))
        if self.material:
            parts.append(f"material {self.material}")
        return f"{', '.join(parts)} (from {', '.join(self.sources)})" if parts else None


def _shown(tooth: ToothNumber) -> str:
    return str(tooth.fdi) if tooth.source_system == "FDI" else f"{tooth.fdi} (Universal {tooth.source_value})"


def _plain(value: str | None, limit: int) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > limit or any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        return None
    return value


def _companion_kind(path: Path) -> MediaKind | None:
    try:
        with path.open("rb") as file:
            kind = classify(path.name, file.read(SNIFF_BYTES), size=path.stat().st_size).kind
    except (UnsupportedFile, OSError):
        return None  # not a companion; the uploader's own checks say what is wrong with it
    return kind if kind.is_companion else None


def _read(path: Path, kind: MediaKind) -> tuple[str | None, list[ToothNumber], list[str], list[str]]:
    """Case, teeth, materials and warnings of one companion file; InvalidCompanion names the file."""
    size = path.stat().st_size
    try:
        if size > MAX_COMPANION_BYTES:
            raise InvalidCompanion(f"the companion is {size} bytes; at most {MAX_COMPANION_BYTES}")
        data = path.read_bytes()
        if kind is MediaKind.EXOCAD_CONSTRUCTION_INFO:
            project = read_exocad_construction_info(data)
            teeth = [t.tooth for t in project.teeth if t.tooth is not None]
            return project.project_guid, teeth, list(project.materials), list(project.warnings)
        order = read_3shape_order(data)
        teeth = [t.tooth for t in order.teeth if t.tooth is not None]
        return order.order_id, teeth, list(order.materials), list(order.warnings)
    except DentGateError as error:
        error.detail = f"{path.name}: {error.detail}"  # say which file, the way the user named it
        raise


def read_companions(paths: list[Path]) -> CompanionFacts:
    """The facts of every exocad constructionInfo / 3Shape order among `paths`; InvalidCompanion if one is unsafe."""
    case: str | None = None
    teeth: list[ToothNumber] | None = None
    material: str | None = None
    sources: list[str] = []
    warnings: list[str] = []
    for path in paths:
        kind = _companion_kind(path)
        if kind is None:
            continue
        found_case, found_teeth, materials, notes = _read(path, kind)
        sources.append(path.name)
        warnings += [f"{path.name}: {note}" for note in notes]
        clean_case = _plain(found_case, MAX_CASE_CHARS)
        if found_case and clean_case is None:
            warnings.append(f"{path.name}: its case/order id is not usable as a case reference; ignored")
        firsts: dict[int, ToothNumber] = {}
        for tooth in found_teeth:
            firsts.setdefault(tooth.fdi, tooth)
        unique = list(firsts.values())
        found_material = _joined(materials)
        if case is None:
            case = clean_case
        elif clean_case and clean_case != case:
            warnings.append(f"{path.name}: names case {clean_case}, another companion {case}; keeping {case}")
        if teeth is None and unique:
            teeth = unique
        elif unique and teeth and {t.fdi for t in unique} != {t.fdi for t in teeth}:
            warnings.append(f"{path.name}: names other teeth than another companion; keeping the first")
        material = material or found_material
    return CompanionFacts(case, tuple(teeth or ()), material, tuple(sources), tuple(warnings))


def _joined(materials: list[str]) -> str | None:
    """The distinct materials, comma-separated, as many as fit the manifest."""
    text: str | None = None
    for material in materials:
        clean = _plain(material, MAX_MATERIAL_CHARS)
        if clean is None:
            continue
        candidate = clean if text is None else f"{text}, {clean}"
        if len(candidate) > MAX_MATERIAL_CHARS:
            break
        text = candidate
    return text


def fill_request(request: DesignRequest) -> tuple[DesignRequest, CompanionFacts]:
    """`request` with the case, teeth and material the technician left out taken from the bundle's companions.

    Also says what was filled, and where a companion disagrees with what the technician gave (kept as given).
    The case may still be None: no `--case` and no companion naming one (`upload_design` refuses that).
    """
    facts = read_companions(list(request.files))
    warnings = list(facts.warnings)
    given_case = (request.case_reference or "").strip() or None  # a lab's case number and a CAD id may differ
    if request.teeth and facts.teeth:
        given = {
            t.fdi if isinstance(t, ToothNumber) else parse_tooth(t, request.tooth_system).fdi for t in request.teeth
        }
        if given != {t.fdi for t in facts.teeth}:
            named = ", ".join(str(t.fdi) for t in facts.teeth)
            warnings.append(f"the companion names teeth {named} (FDI); sending the teeth you gave")
    filled = CompanionFacts(
        case_reference=None if given_case else facts.case_reference,
        teeth=() if request.teeth else facts.teeth,
        material=None if request.material else facts.material,
        sources=facts.sources,
        warnings=tuple(warnings),
    )
    completed = dataclasses.replace(
        request,
        case_reference=given_case or facts.case_reference,
        teeth=list(request.teeth) or list(facts.teeth),
        material=request.material or facts.material,
    )
    return completed, filled
