"""Delivery boxes: `/v2/projects/{projectId}/delivery-boxes`, `/v2/delivery-boxes/...` and legacy twins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.responses import Response

from postwerk.api import views
from postwerk.api.deps import (
    CallerDep,
    ContextDep,
    DeliveryBoxId,
    PageDep,
    ProjectId,
    pagination_headers,
    search_term,
)
from postwerk.api.responses import json_response
from postwerk.api.routing import PAGINATION_HEADERS, add_route
from postwerk.api.schemas import CreateDeliveryBoxIn, CreatedOut, DeliveryBoxOut, DescriptionIn, PasswordIn
from postwerk.service import delivery_boxes as service

router = APIRouter()


def create_delivery_box(
    context: ContextDep, caller: CallerDep, projectId: ProjectId, body: CreateDeliveryBoxIn
) -> Response:
    return json_response(
        {"id": service.create(context, caller, projectId, body.description, body.password)}, 201
    )


def list_delivery_boxes(
    context: ContextDep,
    caller: CallerDep,
    projectId: ProjectId,
    page: PageDep,
    search: Annotated[
        str | None, Query(max_length=255, description="Exact id, or part of name or description.")
    ] = None,
) -> Response:
    rows, total = service.list_for_project(context, caller, projectId, search_term(search), page)
    return json_response([views.delivery_box(row) for row in rows], 200, pagination_headers(page, total))


def get_delivery_box(context: ContextDep, caller: CallerDep, deliveryBoxId: DeliveryBoxId) -> Response:
    return json_response(views.delivery_box(service.get(context, caller, str(deliveryBoxId))))


def delete_delivery_box(context: ContextDep, caller: CallerDep, deliveryBoxId: DeliveryBoxId) -> None:
    service.delete(context, caller, str(deliveryBoxId))


def update_description(
    context: ContextDep, caller: CallerDep, deliveryBoxId: DeliveryBoxId, body: DescriptionIn
) -> None:
    service.set_description(context, caller, str(deliveryBoxId), body.description)


def update_password(
    context: ContextDep, caller: CallerDep, deliveryBoxId: DeliveryBoxId, body: PasswordIn
) -> None:
    service.set_password(context, caller, str(deliveryBoxId), body.password)


for _path, _prefix, _deprecated in (
    ("/v2/projects/{projectId}/delivery-boxes", "", False),
    ("/v2/projects/{projectId}/deliveryboxes", "legacy-", True),
):
    add_route(
        router,
        "POST",
        _path,
        create_delivery_box,
        operation_id=f"{_prefix}mail-create-deliverybox",
        status=201,
        model=CreatedOut,
        deprecated=_deprecated,
        summary="Create a DeliveryBox.",
    )
    add_route(
        router,
        "GET",
        _path,
        list_delivery_boxes,
        operation_id=f"{_prefix}mail-list-delivery-boxes",
        status=200,
        model=list[DeliveryBoxOut],
        headers=PAGINATION_HEADERS,
        deprecated=_deprecated,
        summary="List DeliveryBoxes belonging to a Project.",
    )
for _path, _prefix, _deprecated in (
    ("/v2/delivery-boxes/{deliveryBoxId}", "", False),
    ("/v2/deliveryboxes/{deliveryBoxId}", "legacy-", True),
):
    add_route(
        router,
        "GET",
        _path,
        get_delivery_box,
        operation_id=f"{_prefix}mail-get-delivery-box",
        status=200,
        model=DeliveryBoxOut,
        deprecated=_deprecated,
        summary="Get a DeliveryBox.",
    )
    add_route(
        router,
        "DELETE",
        _path,
        delete_delivery_box,
        operation_id=f"{_prefix}mail-delete-delivery-box",
        status=204,
        deprecated=_deprecated,
        summary="Delete a DeliveryBox.",
    )
for _handler, _field in ((update_description, "description"), (update_password, "password")):
    add_route(
        router,
        "PATCH",
        f"/v2/delivery-boxes/{{deliveryBoxId}}/{_field}",
        _handler,
        operation_id=f"mail-update-delivery-box-{_field}",
        status=204,
        summary=f"Update the {_field} of a DeliveryBox.",
    )
    add_route(
        router,
        "PUT",
        f"/v2/deliveryboxes/{{deliveryBoxId}}/{_field}",
        _handler,
        operation_id=f"deprecated-mail-deliverybox-update-{_field}",
        status=200,
        deprecated=True,
        summary=f"Update the {_field} of a DeliveryBox.",
    )
