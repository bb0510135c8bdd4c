"""The two project reads mail clients need: get (UUID or short id) and list."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from postwerk.api import views
from postwerk.api.deps import CallerDep, ContextDep, PageDep, ProjectId, pagination_headers, search_term
from postwerk.api.responses import json_response
from postwerk.api.routing import PAGINATION_HEADERS, add_route
from postwerk.api.schemas import ProjectListItemOut, ProjectOut
from postwerk.service import projects as service
from postwerk.store.repository import Sorting

router = APIRouter()
_SORT_COLUMNS = {"createdAt": "created_at", "description": "description"}


def get_project(context: ContextDep, caller: CallerDep, projectId: ProjectId) -> Response:
    return json_response(views.project(service.get_project(context, caller, projectId)))


def list_projects(
    context: ContextDep,
    caller: CallerDep,
    page: PageDep,
    searchTerm: Annotated[
        str | None, Query(max_length=255, description="Part of id, short id or description.")
    ] = None,
    customerId: Annotated[
        str | None, Query(max_length=64, description="Only this customer's projects.")
    ] = None,
    sort: Annotated[Literal["createdAt", "description"], Query()] = "createdAt",
    order: Annotated[Literal["asc", "desc"], Query()] = "asc",
) -> Response:
    sorting = [Sorting(_SORT_COLUMNS[sort], descending=order == "desc")]
    rows, total = service.list_projects(
        context,
        caller,
        search_term(searchTerm, ".searchTerm"),
        search_term(customerId, ".customerId"),
        sorting,
        page,
    )
    return json_response([views.project_list_item(row) for row in rows], 200, pagination_headers(page, total))


add_route(
    router,
    "GET",
    "/v2/projects/{projectId}",
    get_project,
    operation_id="project-get-project",
    status=200,
    model=ProjectOut,
    tags=["Project"],
    summary="Get a Project.",
)
add_route(
    router,
    "GET",
    "/v2/projects",
    list_projects,
    operation_id="project-list-projects",
    status=200,
    model=list[ProjectListItemOut],
    headers=PAGINATION_HEADERS,
    tags=["Project"],
    summary="List Projects the token may see.",
)
