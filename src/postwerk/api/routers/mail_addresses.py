"""Mail addresses: `/v2/projects/{projectId}/mail-addresses`, `/v2/mail-addresses/...` and their legacy
twins."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from starlette.responses import Response

from postwerk.api.deps import (
    CallerDep,
    ContextDep,
    MailAddressId,
    PageDep,
    ProjectId,
    pagination_headers,
    search_term,
)
from postwerk.api.responses import json_response, json_text_response
from postwerk.api.routing import PAGINATION_HEADERS, add_route
from postwerk.api.schemas import (
    ActiveIn,
    AddressIn,
    AutoResponderIn,
    CreatedOut,
    CreateMailAddressIn,
    ForwardAddressesIn,
    MailAddressOut,
    PasswordIn,
    QuotaIn,
    RateLimitChangeIn,
    SpamProtectionIn,
)
from postwerk.domain.mailboxes import AUTORESPONDER_OFF, AutoResponder, SpamProtection
from postwerk.service import Context
from postwerk.service import mail_addresses as service
from postwerk.service.access import Caller
from postwerk.store.repository import AddressFilter, Page, Sorting

SortField = Literal[
    "address.domain",
    "address.local",
    "updatedAt",
    "projectId",
    "mailbox.quota",
    "mailbox.name",
    "mailbox.storageInBytes.current",
    "mailbox.storageInBytes.limit",
]
_SORT_COLUMNS: dict[str, str] = {
    "address.domain": "domain_ascii",
    "address.local": "local_part",
    "updatedAt": "updated_at",
    "projectId": "project_id",
    "mailbox.quota": "quota_bytes",
    "mailbox.name": "mailbox_name",
    "mailbox.storageInBytes.current": "usage_bytes",
    "mailbox.storageInBytes.limit": "quota_bytes",
}
_DEFAULT_SORT: list[SortField] = ["address.domain", "address.local"]

router = APIRouter()


def _sorting(sort: list[SortField] | None, order: list[Literal["asc", "desc"]] | None) -> list[Sorting]:
    fields = sort or _DEFAULT_SORT
    orders = order or []
    return [
        Sorting(_SORT_COLUMNS[field], descending=index < len(orders) and orders[index] == "desc")
        for index, field in enumerate(fields)
    ]


SearchQuery = Annotated[
    str | None, Query(max_length=255, description="Exact id, or part of address or name.")
]
FlagQuery = Annotated[bool | None, Query()]
SortQuery = Annotated[list[SortField] | None, Query(description="Sort fields, paired with `order`.")]
OrderQuery = Annotated[
    list[Literal["asc", "desc"]] | None, Query(description="asc or desc for each sort field.")
]


def list_response(
    context: Context,
    caller: Caller,
    project_reference: str | None,
    *,
    page: Page,
    search: str | None,
    forward_address: bool | None,
    catch_all: bool | None,
    auto_responder: bool | None,
    mail_archive: bool | None,
    sort: list[SortField] | None,
    order: list[Literal["asc", "desc"]] | None,
) -> Response:
    """Both list operations (and `hot_paths`): the page as the database wrote it, with paging headers."""
    address_filter = AddressFilter(
        project_ids=None,
        search=search_term(search),
        forward_address=forward_address,
        catch_all=catch_all,
        auto_responder=auto_responder,
        mail_archive=mail_archive,
    )
    documents, total = service.list_for_project(
        context, caller, project_reference, address_filter, _sorting(sort, order), page
    )
    return json_text_response("[" + ",".join(documents) + "]", 200, pagination_headers(page, total))


def create_mail_address(
    context: ContextDep, caller: CallerDep, projectId: ProjectId, body: CreateMailAddressIn
) -> Response:
    mailbox = (
        service.NewMailbox(
            password=body.mailbox.password,
            quota_in_bytes=body.mailbox.quotaInBytes,
            enable_spam_protection=body.mailbox.enableSpamProtection,
        )
        if body.mailbox is not None
        else None
    )
    request = service.NewAddress(
        address=body.address,
        forward_addresses=body.forwardAddresses,
        is_catch_all=body.isCatchAll,
        mailbox=mailbox,
    )
    return json_response({"id": service.create(context, caller, projectId, request)}, 201)


def list_mail_addresses(
    context: ContextDep,
    caller: CallerDep,
    projectId: ProjectId,
    page: PageDep,
    search: SearchQuery = None,
    forwardAddress: FlagQuery = None,
    catchAll: FlagQuery = None,
    autoResponder: FlagQuery = None,
    mailArchive: FlagQuery = None,
    sort: SortQuery = None,
    order: OrderQuery = None,
) -> Response:
    return list_response(
        context,
        caller,
        projectId,
        page=page,
        search=search,
        forward_address=forwardAddress,
        catch_all=catchAll,
        auto_responder=autoResponder,
        mail_archive=mailArchive,
        sort=sort,
        order=order,
    )


def list_mail_addresses_for_user(
    context: ContextDep,
    caller: CallerDep,
    page: PageDep,
    projectId: Annotated[str | None, Query(description="Only this project (UUID or short id).")] = None,
    search: SearchQuery = None,
    forwardAddress: FlagQuery = None,
    catchAll: FlagQuery = None,
    autoResponder: FlagQuery = None,
    mailArchive: FlagQuery = None,
    sort: SortQuery = None,
    order: OrderQuery = None,
) -> Response:
    return list_response(
        context,
        caller,
        projectId,
        page=page,
        search=search,
        forward_address=forwardAddress,
        catch_all=catchAll,
        auto_responder=autoResponder,
        mail_archive=mailArchive,
        sort=sort,
        order=order,
    )


def get_mail_address(context: ContextDep, caller: CallerDep, mailAddressId: MailAddressId) -> Response:
    return json_text_response(service.get(context, caller, str(mailAddressId)))


def delete_mail_address(context: ContextDep, caller: CallerDep, mailAddressId: MailAddressId) -> None:
    service.delete(context, caller, str(mailAddressId))


def update_address(
    context: ContextDep, caller: CallerDep, mailAddressId: MailAddressId, body: AddressIn
) -> None:
    service.change_address(context, caller, str(mailAddressId), body.address)


def update_autoresponder(
    context: ContextDep, caller: CallerDep, mailAddressId: MailAddressId, body: AutoResponderIn
) -> None:
    settings = body.autoResponder
    responder = (
        AUTORESPONDER_OFF
        if settings is None
        else AutoResponder(
            active=settings.active,
            message=settings.message,
            starts_at=settings.startsAt,
            expires_at=settings.expiresAt,
        )
    )
    service.set_autoresponder(context, caller, str(mailAddressId), responder)


def update_catch_all(
    context: ContextDep, caller: CallerDep, mailAddressId: MailAddressId, body: ActiveIn
) -> None:
    service.set_catch_all(context, caller, str(mailAddressId), body.active)


def update_forward_addresses(
    context: ContextDep, caller: CallerDep, mailAddressId: MailAddressId, body: ForwardAddressesIn
) -> None:
    service.set_forward_targets(context, caller, str(mailAddressId), body.forwardAddresses)


def update_password(
    context: ContextDep, caller: CallerDep, mailAddressId: MailAddressId, body: PasswordIn
) -> None:
    service.set_password(context, caller, str(mailAddressId), body.password)


def update_quota(context: ContextDep, caller: CallerDep, mailAddressId: MailAddressId, body: QuotaIn) -> None:
    service.set_quota(context, caller, str(mailAddressId), body.quotaInBytes)


def update_spam_protection(
    context: ContextDep, caller: CallerDep, mailAddressId: MailAddressId, body: SpamProtectionIn
) -> None:
    settings = body.spamProtection
    service.set_spam_protection(
        context,
        caller,
        str(mailAddressId),
        SpamProtection(
            active=settings.active,
            folder=settings.folder,
            relocation_min_spam_score=settings.relocationMinSpamScore,
            auto_delete_spam=settings.autoDeleteSpam,
        ),
    )


def request_rate_limit_change(
    context: ContextDep, caller: CallerDep, mailAddressId: MailAddressId, body: RateLimitChangeIn
) -> None:
    service.request_rate_limit_change(context, caller, str(mailAddressId), body.rateLimitId)


add_route(
    router,
    "POST",
    "/v2/projects/{projectId}/mail-addresses",
    create_mail_address,
    operation_id="mail-create-mail-address",
    status=201,
    model=CreatedOut,
    summary="Create a MailAddress.",
)
add_route(
    router,
    "POST",
    "/v2/projects/{projectId}/mailaddresses",
    create_mail_address,
    operation_id="legacy-mail-create-mail-address",
    status=201,
    model=CreatedOut,
    deprecated=True,
    summary="Create a MailAddress (path of the public guides).",
)
add_route(
    router,
    "GET",
    "/v2/projects/{projectId}/mail-addresses",
    list_mail_addresses,
    operation_id="mail-list-mail-addresses",
    status=200,
    model=list[MailAddressOut],
    headers=PAGINATION_HEADERS,
    summary="List MailAddresses belonging to a Project.",
)
add_route(
    router,
    "GET",
    "/v2/projects/{projectId}/mailaddresses",
    list_mail_addresses,
    operation_id="legacy-mail-list-mail-addresses",
    status=200,
    model=list[MailAddressOut],
    headers=PAGINATION_HEADERS,
    deprecated=True,
    summary="List MailAddresses (path of the public guides).",
)
add_route(
    router,
    "GET",
    "/v2/mail-addresses/",
    list_mail_addresses_for_user,
    operation_id="mail-list-mail-addresses-for-user",
    status=200,
    model=list[MailAddressOut],
    headers=PAGINATION_HEADERS,
    summary="List MailAddresses of every project the token may see.",
)
for _path, _suffix, _deprecated in (
    ("/v2/mail-addresses/{mailAddressId}", "", False),
    ("/v2/mailaddresses/{mailAddressId}", "legacy-", True),
):
    add_route(
        router,
        "GET",
        _path,
        get_mail_address,
        operation_id=f"{_suffix}mail-get-mail-address",
        status=200,
        model=MailAddressOut,
        deprecated=_deprecated,
        summary="Get a MailAddress.",
    )
    add_route(
        router,
        "DELETE",
        _path,
        delete_mail_address,
        operation_id=f"{_suffix}mail-delete-mail-address",
        status=204,
        deprecated=_deprecated,
        summary="Delete a MailAddress.",
    )

add_route(
    router,
    "PATCH",
    "/v2/mail-addresses/{mailAddressId}/address",
    update_address,
    operation_id="mail-update-mail-address-address",
    status=204,
    summary="Update a MailAddress.",
)
add_route(
    router,
    "PUT",
    "/v2/mailaddresses/{mailAddressId}/address",
    update_address,
    operation_id="deprecated-mail-mailaddress-update-address",
    status=200,
    deprecated=True,
    summary="Update a MailAddress.",
)

# (handler, PATCH path suffix, deprecated PUT suffix, legacy PUT suffix, operation name, summary)
_UPDATES = (
    (
        update_autoresponder,
        "autoresponder",
        "autoresponder",
        "autoResponder",
        "autoresponder",
        "Update the autoresponder of a MailAddress.",
    ),
    (
        update_catch_all,
        "catch-all",
        "catchall",
        "catchAll",
        "catchall",
        "Update the catch-all of a MailAddress.",
    ),
    (
        update_forward_addresses,
        "forward-addresses",
        "forward-addresses",
        "forwardaddresses",
        "forward-addresses",
        "Update the forward addresses of a MailAddress.",
    ),
    (
        update_password,
        "password",
        "password",
        "password",
        "password",
        "Update the password of a MailAddress.",
    ),
    (update_quota, "quota", "quota", "quota", "quota", "Update the quota of a MailAddress."),
    (
        update_spam_protection,
        "spam-protection",
        "spam-protection",
        "spamprotection",
        "spam-protection",
        "Update the spam protection of a MailAddress.",
    ),
)
for _handler, _patch, _put, _legacy, _name, _summary in _UPDATES:
    _current = "catch-all" if _name == "catchall" else _name
    add_route(
        router,
        "PATCH",
        f"/v2/mail-addresses/{{mailAddressId}}/{_patch}",
        _handler,
        operation_id=f"mail-update-mail-address-{_current}",
        status=204,
        summary=_summary,
    )
    add_route(
        router,
        "PUT",
        f"/v2/mail-addresses/{{mailAddressId}}/{_put}",
        _handler,
        operation_id=f"deprecated-mail-update-mail-address-{_name}",
        status=200,
        deprecated=True,
        summary=_summary,
    )
    add_route(
        router,
        "PUT",
        f"/v2/mailaddresses/{{mailAddressId}}/{_legacy}",
        _handler,
        operation_id=f"legacy-deprecated-mail-update-mail-address-{_name}",
        status=200,
        deprecated=True,
        summary=_summary + " (path of the public guides)",
    )

add_route(
    router,
    "POST",
    "/v2/mail-addresses/{mailAddressId}/actions/request-rate-limit-change",
    request_rate_limit_change,
    operation_id="mail-request-mail-address-rate-limit-change",
    status=204,
    summary="Request a rate limit change for a MailAddress.",
)
