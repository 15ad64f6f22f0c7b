"""The CAD companion files of a design (G20 歯科技工録: which teeth, what restoration, which materials).

exocad `.constructionInfo` and 3Shape order XML; any DTD is refused, so XXE and billion laughs never run.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import ParseError
from defusedxml.ElementTree import fromstring as safe_fromstring

from gateway.errors import DentGateError
from gateway.transfer.teeth import InvalidTooth, ToothNumber, ToothSystem, normalise_system, parse_tooth

#: Companion files are small; anything larger is refused before parsing.
MAX_COMPANION_BYTES = 16 * 1024 * 1024

# 3Shape exports observed in the field store ToothNumber in the Universal system (1-32) whatever the display
# setting; a property naming the system, where present, wins. These names are the ones looked for.
THREESHAPE_DEFAULT_SYSTEM: ToothSystem = "Universal"
_THREESHAPE_SYSTEM_PROPERTIES = ("ToothNumberingSystem", "ToothNumbering", "NumberingSystem", "ToothNotation")
_THREESHAPE_ORDER_ID_PROPERTIES = ("IntOrderID", "OrderID", "ExtOrderID", "NumOrderID")


class InvalidCompanion(DentGateError):
    code = "invalid-companion"
    status = 422
    title = "Invalid companion file"


class UnsafeXml(InvalidCompanion):
    code = "unsafe-xml"
    title = "XML with a DTD or entities refused"


@dataclass(frozen=True)
class ExocadTooth:
    number: str | None  # as written in <Number>
    tooth: ToothNumber | None  # None when <Number> is missing or not an FDI tooth
    reconstruction_type: str | None


@dataclass(frozen=True)
class ExocadProject:
    project_guid: str | None
    teeth: tuple[ExocadTooth, ...]
    warnings: tuple[str, ...] = ()
    materials: tuple[str, ...] = ()  # distinct <Tooth><Material> values, in order of appearance


@dataclass(frozen=True)
class ThreeShapeTooth:
    number: str | None  # as written in the ToothNumber property
    tooth: ToothNumber | None
    tooth_type_class: str | None  # CacheToothTypeClass, e.g. teCrown, teCrownPontic
    material: str | None  # CacheMaterialName of the tooth's model element


@dataclass(frozen=True)
class ThreeShapeOrder:
    order_id: str | None
    container_version: str | None
    numbering_system: ToothSystem
    numbering_declared: bool  # False: the file names no system and THREESHAPE_DEFAULT_SYSTEM was assumed
    teeth: tuple[ThreeShapeTooth, ...]
    materials: tuple[str, ...]  # distinct, in order of appearance
    warnings: tuple[str, ...] = ()


def _parse(data: bytes, what: str) -> Element:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidCompanion(f"the {what} must be given as bytes")
    if len(data) > MAX_COMPANION_BYTES:
        raise InvalidCompanion(f"the {what} is {len(data)} bytes; at most {MAX_COMPANION_BYTES}")
    if not bytes(data).strip():
        raise InvalidCompanion(f"the {what} is empty")
    try:
        return safe_fromstring(bytes(data), forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DTDForbidden as error:
        raise UnsafeXml(
            f"the {what} contains a DTD (<!DOCTYPE>), which is refused: it could define entities"
        ) from error
    except (EntitiesForbidden, ExternalReferenceForbidden) as error:
        raise UnsafeXml(f"the {what} declares XML entities, which are refused") from error
    except DefusedXmlException as error:
        raise UnsafeXml(f"the {what} uses a forbidden XML construct ({type(error).__name__})") from error
    except ParseError as error:
        raise InvalidCompanion(f"the {what} is not well-formed XML ({error})") from error
    except LookupError as error:  # an encoding declaration Python does not know
        raise InvalidCompanion(f"the {what} declares an unknown text encoding ({error})") from error


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if _local(child.tag) == name]


def _text(element: Element, name: str) -> str | None:
    for child in _children(element, name):
        value = (child.text or "").strip()
        return value or None
    return None


def _tooth(number: str | None, system: ToothSystem, where: str, warnings: list[str]) -> ToothNumber | None:
    if number is None:
        warnings.append(f"{where}: no tooth number")
        return None
    try:
        return parse_tooth(number, system)
    except InvalidTooth as error:
        warnings.append(f"{where}: {error.detail}")
        return None


def read_exocad_construction_info(data: bytes) -> ExocadProject:
    """ProjectGUID, each <Teeth><Tooth> (Number read as FDI, ReconstructionType) and the materials of an exocad project.

    Missing fields become None with a warning; a DTD or entity declaration raises UnsafeXml.
    """
    root = _parse(data, "exocad constructionInfo")
    if _local(root.tag) != "ConstructionInfo":
        raise InvalidCompanion(f"an exocad constructionInfo has the root <ConstructionInfo>, not <{_local(root.tag)}>")
    warnings: list[str] = []
    guid = _text(root, "ProjectGUID")
    if guid is None:
        warnings.append("no ProjectGUID")
    teeth: list[ExocadTooth] = []
    materials: list[str] = []
    for container in _children(root, "Teeth"):
        for position, element in enumerate(_children(container, "Tooth"), start=1):
            number = _text(element, "Number")
            material = _text(element, "Material")
            if material and material not in materials:
                materials.append(material)
            reconstruction = _text(element, "ReconstructionType")
            if reconstruction is None:
                warnings.append(f"tooth {position}: no ReconstructionType")
            tooth = _tooth(number, "FDI", f"tooth {position}", warnings)
            teeth.append(ExocadTooth(number, tooth, reconstruction))
    if not teeth:
        warnings.append("no <Teeth><Tooth> elements")
    return ExocadProject(guid, tuple(teeth), tuple(warnings), tuple(materials))


def _properties(element: Element) -> dict[str, str]:
    """The direct <Property name=... value=...> children of a 3Shape <Object>."""
    result: dict[str, str] = {}
    for child in _children(element, "Property"):
        name = child.get("name")
        if name and name not in result:
            result[name] = (child.get("value") or "").strip()
    return result


def _objects(root: Element, object_type: str) -> list[dict[str, str]]:
    return [_properties(obj) for obj in root.iter() if _local(obj.tag) == "Object" and obj.get("type") == object_type]


def _declared_system(root: Element) -> ToothSystem | None:
    for element in root.iter():
        if _local(element.tag) == "Property" and element.get("name") in _THREESHAPE_SYSTEM_PROPERTIES:
            value = (element.get("value") or "").strip()
            try:
                return normalise_system(value)
            except InvalidTooth:
                continue
    return None


def read_3shape_order(data: bytes) -> ThreeShapeOrder:
    """Order id, teeth (ToothNumber, class, material) and materials of a 3Shape order (root <DentalContainer>).

    Tooth numbers are read in the system the file names, else THREESHAPE_DEFAULT_SYSTEM (Universal).
    """
    root = _parse(data, "3Shape order")
    if _local(root.tag) != "DentalContainer":
        raise InvalidCompanion(f"a 3Shape order has the root <DentalContainer>, not <{_local(root.tag)}>")
    warnings: list[str] = []
    orders = _objects(root, "TDM_Item_Order")
    order_id = next(
        (order[key] for order in orders for key in _THREESHAPE_ORDER_ID_PROPERTIES if order.get(key)),
        None,
    )
    if order_id is None:
        warnings.append("no order id (IntOrderID, OrderID, ExtOrderID or NumOrderID)")
    declared = _declared_system(root)
    system = declared or THREESHAPE_DEFAULT_SYSTEM
    model_elements = _objects(root, "TDM_Item_ModelElement")
    material_by_element = {
        element["ModelElementID"]: element["CacheMaterialName"]
        for element in model_elements
        if element.get("ModelElementID") and element.get("CacheMaterialName")
    }
    teeth: list[ThreeShapeTooth] = []
    for position, element in enumerate(_objects(root, "TDM_Item_ToothElement"), start=1):
        number = element.get("ToothNumber") or None
        tooth = _tooth(number, system, f"tooth element {position}", warnings)
        material = material_by_element.get(element.get("ModelElementID", "")) or element.get("CacheMaterialName")
        teeth.append(ThreeShapeTooth(number, tooth, element.get("CacheToothTypeClass") or None, material or None))
    if not teeth:
        warnings.append("no TDM_Item_ToothElement objects")
    materials: list[str] = []
    for candidate in [
        *(e.get("CacheMaterialName") for e in model_elements),
        *(o.get("CacheMaterialName") for o in orders),
    ]:
        if candidate and candidate not in materials:
            materials.append(candidate)
    return ThreeShapeOrder(
        order_id=order_id,
        container_version=root.get("version"),
        numbering_system=system,
        numbering_declared=declared is not None,
        teeth=tuple(teeth),
        materials=tuple(materials),
        warnings=tuple(warnings),
    )
