"""How `dentgate tech watch` uploads a bundle: companions prefill it, the case rule applies, `upload_design` sends it.

The case rule (see `clients.watcher`): a companion's case (3Shape order id, else exocad ProjectGUID), else the
sub-folder's name; loose files without a companion have no case and are refused.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

from clients.api import GatewayClient
from clients.prefill import fill_request
from clients.uploader import DesignRefused, DesignRequest, UploadFailed, gateway_key, upload_design
from clients.watcher import Bundle, Send


def make_sender(
    connect: Callable[[], GatewayClient], station_ids: list[uuid.UUID], process: str, location: str
) -> Send:
    """Upload bundles with `upload_design`, on the current login each time (so a new `dentgate login` is used)."""

    def who(client: GatewayClient) -> tuple[uuid.UUID, uuid.UUID]:
        me = client.get("/api/v1/me")
        if me["device_id"] is None:
            raise UploadFailed("log in with --device from your approved device to upload")
        return uuid.UUID(me["account_id"]), uuid.UUID(me["device_id"])

    client = connect()  # refuse to start unless logged in from this device, for stations the lab has
    who(client)
    active = {uuid.UUID(station["id"]) for station in client.get("/api/v1/lab/recipients")["stations"]}
    unknown = [str(station) for station in station_ids if station not in active]
    if unknown:
        raise UploadFailed(f"not an active station of the lab: {', '.join(unknown)}")

    def send(bundle: Bundle) -> str:
        request, filled = fill_request(DesignRequest(list(bundle.files), None, station_ids, process, location, []))
        if request.case_reference is None:
            if bundle.root is None:
                raise DesignRefused(
                    "no case reference: put the files in a sub-folder named with the lab's case number, or export "
                    "the exocad .constructionInfo or 3Shape order XML with them"
                )
            request = dataclasses.replace(request, case_reference=bundle.name)
        client = connect()
        result = upload_design(client, request, *who(client), gateway_key(client))
        described = filled.describe()
        notes = [*([f"filled {described}"] if described else []), *filled.warnings, *result.warnings]
        return f"sent as design {result.design_id} (case {request.case_reference})" + "".join(f"; {n}" for n in notes)

    return send
