"""The official Python SDK (`mittwald-api-client` 3.0.0), unchanged, against the live test server.

Every mail operation the SDK exposes and the two project reads run through `sync_detailed`, which never
raises on an HTTP error: each call checks the exact status and the type the SDK parsed the body into, so a
missing required field (KeyError), a body that is not JSON or an unexpected success code shows up here.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx
import pytest
from mittwald_api_client import AuthenticatedClient
from mittwald_api_client.api.mail import (
    mail_create_deliverybox,
    mail_create_mail_address,
    mail_delete_delivery_box,
    mail_delete_mail_address,
    mail_disable_mail_archive,
    mail_get_delivery_box,
    mail_get_mail_address,
    mail_list_backups_for_mail_address,
    mail_list_delivery_boxes,
    mail_list_mail_addresses,
    mail_list_mail_addresses_for_user,
    mail_list_project_mail_settings,
    mail_recover_mail_address_emails,
    mail_update_delivery_box_description,
    mail_update_delivery_box_password,
    mail_update_mail_address_address,
    mail_update_mail_address_autoresponder,
    mail_update_mail_address_catch_all,
    mail_update_mail_address_forward_addresses,
    mail_update_mail_address_password,
    mail_update_mail_address_quota,
    mail_update_mail_address_spam_protection,
    mail_update_project_mail_setting,
)
from mittwald_api_client.api.project import project_get_project, project_list_projects
from mittwald_api_client.models import (
    DeMittwaldV1CommonsError,
    DeMittwaldV1CommonsValidationErrors,
    DeMittwaldV1MailCreateForwardAddress,
    DeMittwaldV1MailCreateMailAddress,
    DeMittwaldV1MailCreateMailAddressMailbox,
    DeMittwaldV1MailDeliverybox,
    DeMittwaldV1MailMailAddress,
    DeMittwaldV1MailMailAddressMailbox,
    DeMittwaldV1MailMailAddressMailboxSpamProtectionFolder,
    DeMittwaldV1ProjectProject,
    MailCreateDeliveryboxBody,
    MailCreateDeliveryboxResponse201,
    MailCreateMailAddressResponse201,
    MailListMailAddressesForUserOrderItem,
    MailListMailAddressesForUserSortItem,
    MailListMailAddressesOrderItem,
    MailListMailAddressesSortItem,
    MailListProjectMailSettingsResponse200,
    MailUpdateDeliveryBoxDescriptionBody,
    MailUpdateDeliveryBoxPasswordBody,
    MailUpdateMailAddressAddressBody,
    MailUpdateMailAddressAutoresponderBody,
    MailUpdateMailAddressAutoresponderBodyAutoResponderType0,
    MailUpdateMailAddressCatchAllBody,
    MailUpdateMailAddressForwardAddressesBody,
    MailUpdateMailAddressPasswordBody,
    MailUpdateMailAddressQuotaBody,
    MailUpdateMailAddressSpamProtectionBody,
    MailUpdateMailAddressSpamProtectionBodySpamProtection,
    MailUpdateMailAddressSpamProtectionBodySpamProtectionFolder,
    MailUpdateProjectMailSettingBodyType0,
    MailUpdateProjectMailSettingBodyType1,
    MailUpdateProjectMailSettingMailSetting,
    ProjectListProjectsOrder,
    ProjectListProjectsResponse200Item,
    ProjectListProjectsSort,
)
from mittwald_api_client.types import UNSET, Response, Unset

from tests.api.conftest import LiveServer, Tenant

T = TypeVar("T")

PASSWORD = "correct horse battery"
GIB = 1024**3
SORT = MailListMailAddressesSortItem
ORDER = MailListMailAddressesOrderItem


# ---- helpers ---------------------------------------------------------------------------------------------


def sdk_client(server: LiveServer, token: str, *, x_access_token: bool = False) -> AuthenticatedClient:
    """The SDK's client as its README shows it; by default it sends `Authorization: Bearer <token>`, with
    `x_access_token` it sends `X-Access-Token: <token>` as mittwald's JS client does."""
    if x_access_token:
        return AuthenticatedClient(
            base_url=server.base_url,
            token=token,
            prefix="",
            auth_header_name="X-Access-Token",
            timeout=httpx.Timeout(10.0),
        )
    return AuthenticatedClient(base_url=server.base_url, token=token, timeout=httpx.Timeout(10.0))


@pytest.fixture
def sdk(live_server: LiveServer, tenant: Tenant) -> Iterator[AuthenticatedClient]:
    with sdk_client(live_server, tenant.token) as client:
        yield client


@pytest.fixture
def other_sdk(live_server: LiveServer, other_tenant: Tenant) -> Iterator[AuthenticatedClient]:
    with sdk_client(live_server, other_tenant.token, x_access_token=True) as client:
        yield client


def expect(response: Response[Any], status: int, kind: type[T]) -> T:
    """The exact status, and the body parsed by the SDK into `kind`."""
    assert response.status_code == status, (response.status_code, response.content)
    assert isinstance(response.parsed, kind), (kind, response.parsed)
    return response.parsed


def expect_list(response: Response[Any], kind: type[T]) -> list[T]:
    assert response.status_code == 200, (response.status_code, response.content)
    assert isinstance(response.parsed, list), response.parsed
    assert all(isinstance(item, kind) for item in response.parsed), response.parsed
    return response.parsed


def expect_no_content(response: Response[Any]) -> None:
    assert response.status_code == 204, (response.status_code, response.content)
    assert response.content == b""
    assert response.parsed is None


def expect_error(response: Response[Any], status: int, error_type: str) -> DeMittwaldV1CommonsError:
    error = expect(response, status, DeMittwaldV1CommonsError)
    assert error.type_ == error_type, error
    assert error.message
    return error


def expect_validation_error(response: Response[Any], path: str, keyword: str | None = None) -> None:
    errors = expect(response, 400, DeMittwaldV1CommonsValidationErrors)
    assert errors.type_.value == "ValidationError"
    assert any(
        issue.path == path and (keyword is None or issue.type_ == keyword)
        for issue in errors.validation_errors
    ), [(issue.path, issue.type_, issue.message) for issue in errors.validation_errors]


def pagination(response: Response[Any]) -> tuple[int, int, int, int]:
    """(total count, limit, skip, page) from the pagination headers of a list answer."""
    headers = response.headers
    return (
        int(headers["X-Pagination-TotalCount"]),
        int(headers["X-Pagination-Limit"]),
        int(headers["X-Pagination-Skip"]),
        int(headers["X-Pagination-Page"]),
    )


def mailbox(address: str, *, quota: int = 2 * GIB, spam: bool = True) -> DeMittwaldV1MailCreateMailAddress:
    return DeMittwaldV1MailCreateMailAddress(
        address=address,
        is_catch_all=False,
        mailbox=DeMittwaldV1MailCreateMailAddressMailbox(
            enable_spam_protection=spam, password=PASSWORD, quota_in_bytes=quota
        ),
    )


def create(
    client: AuthenticatedClient,
    project_id: str,
    body: DeMittwaldV1MailCreateMailAddress | DeMittwaldV1MailCreateForwardAddress,
) -> uuid.UUID:
    response = mail_create_mail_address.sync_detailed(project_id, client=client, body=body)
    created = expect(response, 201, MailCreateMailAddressResponse201)
    assert isinstance(created.id, uuid.UUID)
    return created.id


def get(client: AuthenticatedClient, address_id: uuid.UUID) -> DeMittwaldV1MailMailAddress:
    got = expect(
        mail_get_mail_address.sync_detailed(address_id, client=client), 200, DeMittwaldV1MailMailAddress
    )
    assert got.id == address_id
    assert got.additional_properties == {}, "fields the official schema does not know"
    return got


def box_of(address: DeMittwaldV1MailMailAddress) -> DeMittwaldV1MailMailAddressMailbox:
    assert isinstance(address.mailbox, DeMittwaldV1MailMailAddressMailbox), address
    return address.mailbox


def locals_of(addresses: list[DeMittwaldV1MailMailAddress]) -> list[str]:
    return [item.address.split("@")[0] for item in addresses]


def aware(moment: datetime.datetime) -> datetime.datetime:
    assert isinstance(moment, datetime.datetime)
    assert moment.tzinfo is not None, moment
    return moment


# ---- mail addresses ----------------------------------------------------------------------------------------


def test_mail_address_create_read_every_update_and_delete(sdk: AuthenticatedClient, tenant: Tenant) -> None:
    mailbox_id = create(sdk, tenant.project_id, mailbox(f"info@{tenant.domain}"))
    forward_id = create(
        sdk,
        tenant.project_id,
        DeMittwaldV1MailCreateForwardAddress(
            address=f"fwd@{tenant.domain}", forward_addresses=["a@elsewhere.example"]
        ),
    )

    created = get(sdk, mailbox_id)
    assert created.address == f"info@{tenant.domain}"
    assert created.project_id == tenant.project_id
    assert created.is_catch_all is False
    assert created.receiving_disabled is False
    assert created.forward_addresses == []
    assert created.auto_responder.active is False
    assert created.is_archived is False and created.is_backup_in_progress is False
    assert created.archive.active is False
    aware(created.updated_at)
    box = box_of(created)
    assert box.name and box.name.isascii()
    assert box.storage_in_bytes.limit == 2 * GIB
    assert box.storage_in_bytes.current.value == 0
    aware(box.storage_in_bytes.current.updated_at)
    assert box.spam_protection.active is True
    aware(box.password_updated_at)

    forward = get(sdk, forward_id)
    assert forward.address == f"fwd@{tenant.domain}"
    assert forward.forward_addresses == ["a@elsewhere.example"]
    assert isinstance(forward.mailbox, Unset)

    # a mailbox that keeps a copy and forwards, without spam protection
    copy_body = mailbox(f"copy@{tenant.domain}", spam=False)
    copy_body.forward_addresses = ["z@elsewhere.example"]
    copy = get(sdk, create(sdk, tenant.project_id, copy_body))
    assert copy.forward_addresses == ["z@elsewhere.example"]
    assert box_of(copy).spam_protection.active is False

    # address
    expect_no_content(
        mail_update_mail_address_address.sync_detailed(
            mailbox_id, client=sdk, body=MailUpdateMailAddressAddressBody(address=f"hello@{tenant.domain}")
        )
    )
    assert get(sdk, mailbox_id).address == f"hello@{tenant.domain}"

    # autoresponder on, with a period
    starts = datetime.datetime(
        2030, 1, 1, 10, 0, 0, 250000, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    expires = datetime.datetime(2030, 1, 8, 18, 30, tzinfo=datetime.UTC)
    expect_no_content(
        mail_update_mail_address_autoresponder.sync_detailed(
            mailbox_id,
            client=sdk,
            body=MailUpdateMailAddressAutoresponderBody(
                auto_responder=MailUpdateMailAddressAutoresponderBodyAutoResponderType0(
                    active=True, message="Out of office", starts_at=starts, expires_at=expires
                )
            ),
        )
    )
    responder = get(sdk, mailbox_id).auto_responder
    assert responder.active is True
    assert responder.message == "Out of office"
    assert isinstance(responder.starts_at, datetime.datetime)
    assert isinstance(responder.expires_at, datetime.datetime)
    assert aware(responder.starts_at) == starts
    assert aware(responder.expires_at) == expires

    # autoresponder off: the SDK sends {"autoResponder": null}
    expect_no_content(
        mail_update_mail_address_autoresponder.sync_detailed(
            mailbox_id, client=sdk, body=MailUpdateMailAddressAutoresponderBody(auto_responder=None)
        )
    )
    assert get(sdk, mailbox_id).auto_responder.active is False

    # catch-all
    expect_no_content(
        mail_update_mail_address_catch_all.sync_detailed(
            mailbox_id, client=sdk, body=MailUpdateMailAddressCatchAllBody(active=True)
        )
    )
    assert get(sdk, mailbox_id).is_catch_all is True

    # forward addresses, of the forward address and of the mailbox (a copy goes on)
    targets = ["b@elsewhere.example", "c@elsewhere.example"]
    for address_id in (forward_id, mailbox_id):
        expect_no_content(
            mail_update_mail_address_forward_addresses.sync_detailed(
                address_id,
                client=sdk,
                body=MailUpdateMailAddressForwardAddressesBody(forward_addresses=targets),
            )
        )
        assert get(sdk, address_id).forward_addresses == targets

    # password
    before = get(sdk, mailbox_id)
    expect_no_content(
        mail_update_mail_address_password.sync_detailed(
            mailbox_id, client=sdk, body=MailUpdateMailAddressPasswordBody(password="another good secret")
        )
    )
    after = get(sdk, mailbox_id)
    assert box_of(after).password_updated_at > box_of(before).password_updated_at
    assert after.updated_at >= before.updated_at > created.updated_at

    # quota, then unlimited
    for quota in (3 * GIB, -1):
        expect_no_content(
            mail_update_mail_address_quota.sync_detailed(
                mailbox_id, client=sdk, body=MailUpdateMailAddressQuotaBody(quota_in_bytes=quota)
            )
        )
        assert box_of(get(sdk, mailbox_id)).storage_in_bytes.limit == quota

    # spam protection
    expect_no_content(
        mail_update_mail_address_spam_protection.sync_detailed(
            mailbox_id,
            client=sdk,
            body=MailUpdateMailAddressSpamProtectionBody(
                spam_protection=MailUpdateMailAddressSpamProtectionBodySpamProtection(
                    active=True,
                    auto_delete_spam=True,
                    folder=MailUpdateMailAddressSpamProtectionBodySpamProtectionFolder.INBOX,
                    relocation_min_spam_score=7,
                )
            ),
        )
    )
    spam = box_of(get(sdk, mailbox_id)).spam_protection
    assert spam.active is True
    assert spam.auto_delete_spam is True
    assert spam.folder == DeMittwaldV1MailMailAddressMailboxSpamProtectionFolder.INBOX
    assert spam.relocation_min_spam_score == 7

    # delete
    for address_id in (forward_id, mailbox_id):
        expect_no_content(mail_delete_mail_address.sync_detailed(address_id, client=sdk))
        expect_error(mail_get_mail_address.sync_detailed(address_id, client=sdk), 404, "NotFound")
        expect_error(mail_delete_mail_address.sync_detailed(address_id, client=sdk), 404, "NotFound")


def test_lists_paginate_sort_and_filter(
    sdk: AuthenticatedClient, other_sdk: AuthenticatedClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    for local, quota in (("carol", GIB), ("alice", 3 * GIB), ("bob", 2 * GIB)):
        create(sdk, tenant.project_id, mailbox(f"{local}@{tenant.domain}", quota=quota))
    dave = create(
        sdk,
        tenant.project_id,
        DeMittwaldV1MailCreateForwardAddress(
            address=f"dave@{tenant.domain}", forward_addresses=["x@elsewhere.example"]
        ),
    )
    expect_no_content(
        mail_update_mail_address_catch_all.sync_detailed(
            dave, client=sdk, body=MailUpdateMailAddressCatchAllBody(active=True)
        )
    )
    bob = expect_list(
        mail_list_mail_addresses.sync_detailed(tenant.project_id, client=sdk, search="bob"),
        DeMittwaldV1MailMailAddress,
    )
    assert locals_of(bob) == ["bob"]
    expect_no_content(
        mail_update_mail_address_autoresponder.sync_detailed(
            bob[0].id,
            client=sdk,
            body=MailUpdateMailAddressAutoresponderBody(
                auto_responder=MailUpdateMailAddressAutoresponderBodyAutoResponderType0(
                    active=True, message="Away"
                )
            ),
        )
    )
    create(other_sdk, other_tenant.project_id, mailbox(f"alice@{other_tenant.domain}"))

    def listed(**params: Any) -> tuple[list[str], tuple[int, int, int, int]]:
        response = mail_list_mail_addresses.sync_detailed(tenant.project_id, client=sdk, **params)
        return locals_of(expect_list(response, DeMittwaldV1MailMailAddress)), pagination(response)

    # the SDK sends limit=10000 and skip=0 unless told otherwise
    assert listed() == (["alice", "bob", "carol", "dave"], (4, 10000, 0, 0))
    assert listed(sort=[SORT.ADDRESS_LOCAL], order=[ORDER.DESC])[0] == ["dave", "carol", "bob", "alice"]
    assert listed(sort=[SORT.ADDRESS_DOMAIN, SORT.ADDRESS_LOCAL], order=[ORDER.ASC, ORDER.DESC])[0] == [
        "dave",
        "carol",
        "bob",
        "alice",
    ]
    # dave, a forward address, has no quota: where it goes differs between the databases, so leave it out
    for order, expected in ((ORDER.ASC, ["carol", "bob", "alice"]), (ORDER.DESC, ["alice", "bob", "carol"])):
        by_quota = listed(sort=[SORT.MAILBOX_STORAGEINBYTES_LIMIT], order=[order])[0]
        assert [local for local in by_quota if local != "dave"] == expected

    # filters
    assert listed(forward_address=True)[0] == ["dave"]
    assert listed(forward_address=False)[0] == ["alice", "bob", "carol"]
    assert listed(catch_all=True)[0] == ["dave"]
    assert listed(catch_all=False)[0] == ["alice", "bob", "carol"]
    assert listed(auto_responder=True)[0] == ["bob"]
    assert listed(auto_responder=False)[0] == ["alice", "carol", "dave"]
    assert listed(mail_archive=True)[0] == []
    assert listed(mail_archive=False)[0] == ["alice", "bob", "carol", "dave"]
    assert listed(search="aro") == (["carol"], (1, 10000, 0, 0))

    # pagination: skip, and page (counted from 0) once the SDK's default skip=0 is left out
    assert listed(limit=2, skip=1) == (["bob", "carol"], (4, 2, 1, 0))
    assert listed(limit=2, skip=UNSET, page=1) == (["carol", "dave"], (4, 2, 2, 1))
    assert listed(limit=3, skip=3) == (["dave"], (4, 3, 3, 1))
    assert listed(limit=2, skip=10) == ([], (4, 2, 10, 5))

    # GET /v2/mail-addresses/: every project the token may see, or one of them by UUID or short id
    for project in (UNSET, tenant.project_id, tenant.short_id):
        response = mail_list_mail_addresses_for_user.sync_detailed(
            client=sdk,
            project_id=project,
            sort=[MailListMailAddressesForUserSortItem.ADDRESS_LOCAL],
            order=[MailListMailAddressesForUserOrderItem.DESC],
        )
        found = expect_list(response, DeMittwaldV1MailMailAddress)
        assert locals_of(found) == ["dave", "carol", "bob", "alice"]
        assert {item.project_id for item in found} == {tenant.project_id}
        assert pagination(response)[0] == 4
    response = mail_list_mail_addresses_for_user.sync_detailed(client=sdk, limit=1, catch_all=True)
    assert locals_of(expect_list(response, DeMittwaldV1MailMailAddress)) == ["dave"]
    assert pagination(response) == (1, 1, 0, 0)
    other = mail_list_mail_addresses_for_user.sync_detailed(client=other_sdk)
    assert [item.address for item in expect_list(other, DeMittwaldV1MailMailAddress)] == [
        f"alice@{other_tenant.domain}"
    ]


def test_internationalised_address_round_trips(sdk: AuthenticatedClient, tenant: Tenant) -> None:
    address = f"пошта@{tenant.idn_domain}"
    address_id = create(sdk, tenant.project_id, mailbox(address))
    got = get(sdk, address_id)
    assert got.address == address
    assert box_of(got).name.isascii()

    found = expect_list(
        mail_list_mail_addresses.sync_detailed(tenant.project_id, client=sdk, search="пошта"),
        DeMittwaldV1MailMailAddress,
    )
    assert [item.address for item in found] == [address]

    # the same address with the A-label domain or another case is the same address
    a_label = tenant.idn_domain.encode("idna").decode()
    for duplicate in (f"пошта@{a_label}", f"ПОШТА@{tenant.idn_domain}"):
        response = mail_create_mail_address.sync_detailed(
            tenant.project_id, client=sdk, body=mailbox(duplicate)
        )
        expect_error(response, 409, "Conflict")

    renamed = f"лист@{tenant.idn_domain}"
    expect_no_content(
        mail_update_mail_address_address.sync_detailed(
            address_id, client=sdk, body=MailUpdateMailAddressAddressBody(address=renamed)
        )
    )
    targets = ["адреса@пример.рф", "x@elsewhere.example"]
    expect_no_content(
        mail_update_mail_address_forward_addresses.sync_detailed(
            address_id, client=sdk, body=MailUpdateMailAddressForwardAddressesBody(forward_addresses=targets)
        )
    )
    got = get(sdk, address_id)
    assert got.address == renamed
    assert got.forward_addresses == targets

    forward_id = create(
        sdk,
        tenant.project_id,
        DeMittwaldV1MailCreateForwardAddress(
            address=f"переслати@{tenant.idn_domain}", forward_addresses=[renamed]
        ),
    )
    assert get(sdk, forward_id).forward_addresses == [renamed]


# ---- delivery boxes ----------------------------------------------------------------------------------------


def get_box(client: AuthenticatedClient, box_id: uuid.UUID) -> DeMittwaldV1MailDeliverybox:
    got = expect(mail_get_delivery_box.sync_detailed(box_id, client=client), 200, DeMittwaldV1MailDeliverybox)
    assert got.id == box_id
    assert got.additional_properties == {}, "fields the official schema does not know"
    return got


def test_delivery_boxes(sdk: AuthenticatedClient, tenant: Tenant) -> None:
    ids: dict[str, uuid.UUID] = {}
    response: Response[Any]
    for description in ("newsletter", "billing"):
        response = mail_create_deliverybox.sync_detailed(
            tenant.project_id,
            client=sdk,
            body=MailCreateDeliveryboxBody(description=description, password=PASSWORD),
        )
        ids[description] = expect(response, 201, MailCreateDeliveryboxResponse201).id

    box = get_box(sdk, ids["newsletter"])
    assert box.description == "newsletter"
    assert box.project_id == tenant.project_id
    assert box.name and box.name.isascii()
    assert isinstance(box.authentication_enabled, bool) and isinstance(box.sending_enabled, bool)
    aware(box.updated_at)
    aware(box.password_updated_at)
    assert get_box(sdk, ids["billing"]).name != box.name

    response = mail_list_delivery_boxes.sync_detailed(tenant.project_id, client=sdk)
    listed = expect_list(response, DeMittwaldV1MailDeliverybox)
    assert sorted(item.description for item in listed) == ["billing", "newsletter"]
    assert pagination(response) == (2, 10000, 0, 0)
    response = mail_list_delivery_boxes.sync_detailed(tenant.short_id, client=sdk, search="news")
    assert [item.id for item in expect_list(response, DeMittwaldV1MailDeliverybox)] == [ids["newsletter"]]
    assert pagination(response)[0] == 1
    response = mail_list_delivery_boxes.sync_detailed(tenant.project_id, client=sdk, limit=1, skip=1)
    assert len(expect_list(response, DeMittwaldV1MailDeliverybox)) == 1
    assert pagination(response) == (2, 1, 1, 1)

    expect_no_content(
        mail_update_delivery_box_description.sync_detailed(
            ids["newsletter"], client=sdk, body=MailUpdateDeliveryBoxDescriptionBody(description="renamed")
        )
    )
    renamed = get_box(sdk, ids["newsletter"])
    assert renamed.description == "renamed"
    assert renamed.name == box.name  # the SMTP login stays
    expect_no_content(
        mail_update_delivery_box_password.sync_detailed(
            ids["newsletter"],
            client=sdk,
            body=MailUpdateDeliveryBoxPasswordBody(password="another good secret"),
        )
    )
    assert get_box(sdk, ids["newsletter"]).password_updated_at > box.password_updated_at

    expect_no_content(mail_delete_delivery_box.sync_detailed(ids["newsletter"], client=sdk))
    expect_error(mail_get_delivery_box.sync_detailed(ids["newsletter"], client=sdk), 404, "NotFound")
    response = mail_list_delivery_boxes.sync_detailed(tenant.project_id, client=sdk)
    assert [item.id for item in expect_list(response, DeMittwaldV1MailDeliverybox)] == [ids["billing"]]


# ---- project mail settings ---------------------------------------------------------------------------------


def test_project_mail_settings(sdk: AuthenticatedClient, tenant: Tenant) -> None:
    def settings(project: str) -> MailListProjectMailSettingsResponse200:
        response = mail_list_project_mail_settings.sync_detailed(project, client=sdk)
        got = expect(response, 200, MailListProjectMailSettingsResponse200)
        assert got.project_id == tenant.project_id
        return got

    empty = settings(tenant.project_id)
    assert empty.blacklist == [] and empty.whitelist == []

    expect_no_content(
        mail_update_project_mail_setting.sync_detailed(
            tenant.project_id,
            MailUpdateProjectMailSettingMailSetting.BLACKLIST,
            client=sdk,
            body=MailUpdateProjectMailSettingBodyType0(blacklist=["spam@*.example", "*@bad.example"]),
        )
    )
    expect_no_content(
        mail_update_project_mail_setting.sync_detailed(
            tenant.short_id,
            MailUpdateProjectMailSettingMailSetting.WHITELIST,
            client=sdk,
            body=MailUpdateProjectMailSettingBodyType1(whitelist=["boss@пример.рф", "ok@good.example"]),
        )
    )
    got = settings(tenant.short_id)
    assert got.blacklist == ["spam@*.example", "*@bad.example"]
    assert got.whitelist == ["boss@xn--e1afmkfd.xn--p1ai", "ok@good.example"]  # A-labels, as the spec wants

    expect_no_content(
        mail_update_project_mail_setting.sync_detailed(
            tenant.project_id,
            MailUpdateProjectMailSettingMailSetting.BLACKLIST,
            client=sdk,
            body=MailUpdateProjectMailSettingBodyType0(blacklist=[]),
        )
    )
    got = settings(tenant.project_id)
    assert got.blacklist == [] and got.whitelist == ["boss@xn--e1afmkfd.xn--p1ai", "ok@good.example"]

    response = mail_update_project_mail_setting.sync_detailed(
        tenant.project_id,
        MailUpdateProjectMailSettingMailSetting.BLACKLIST,
        client=sdk,
        body=MailUpdateProjectMailSettingBodyType0(blacklist=["пошта@example.org"]),
    )
    expect_validation_error(response, ".blacklist[0]")


# ---- projects and authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize("x_access_token", [False, True], ids=["bearer", "x-access-token"])
def test_projects_with_both_auth_styles(
    live_server: LiveServer, tenant: Tenant, x_access_token: bool
) -> None:
    with sdk_client(live_server, tenant.token, x_access_token=x_access_token) as client:
        for reference in (tenant.project_id, tenant.short_id):
            project = expect(
                project_get_project.sync_detailed(reference, client=client), 200, DeMittwaldV1ProjectProject
            )
            assert project.id == uuid.UUID(tenant.project_id)
            assert project.short_id == tenant.short_id
            assert project.description == "test project"
            aware(project.created_at)

        response = project_list_projects.sync_detailed(
            client=client,
            limit=10,
            sort=ProjectListProjectsSort.DESCRIPTION,
            order=ProjectListProjectsOrder.DESC,
        )
        projects = expect_list(response, ProjectListProjectsResponse200Item)
        assert [(item.id, item.short_id) for item in projects] == [(tenant.project_id, tenant.short_id)]
        assert pagination(response) == (1, 10, 0, 0)

        # a mutation with this header style works too
        address_id = create(client, tenant.project_id, mailbox(f"auth-{int(x_access_token)}@{tenant.domain}"))
        expect_no_content(mail_delete_mail_address.sync_detailed(address_id, client=client))


def test_unknown_token_is_refused(live_server: LiveServer, tenant: Tenant) -> None:
    for x_access_token in (False, True):
        with sdk_client(live_server, "not-a-token", x_access_token=x_access_token) as client:
            expect_error(
                project_get_project.sync_detailed(tenant.project_id, client=client), 401, "Unauthorized"
            )
            response = mail_list_mail_addresses.sync_detailed(tenant.project_id, client=client)
            expect_error(response, 401, "Unauthorized")


# ---- error answers parse cleanly ---------------------------------------------------------------------------


def test_error_answers_parse(
    sdk: AuthenticatedClient, other_sdk: AuthenticatedClient, tenant: Tenant, other_tenant: Tenant
) -> None:
    # 400: validation errors, with JS property paths
    response: Response[Any] = mail_create_mail_address.sync_detailed(
        tenant.project_id, client=sdk, body=mailbox(f"small@{tenant.domain}", quota=1000)
    )
    expect_validation_error(response, ".mailbox.quotaInBytes", "minimum")
    response = mail_create_mail_address.sync_detailed(
        tenant.project_id, client=sdk, body=mailbox(f"me@{other_tenant.domain}")
    )
    expect_validation_error(response, ".address")
    address_id = create(sdk, tenant.project_id, mailbox(f"mine@{tenant.domain}"))
    response = mail_update_mail_address_quota.sync_detailed(
        address_id, client=sdk, body=MailUpdateMailAddressQuotaBody(quota_in_bytes=1000)
    )
    expect_validation_error(response, ".quotaInBytes", "minimum")
    response = mail_update_mail_address_password.sync_detailed(
        address_id, client=sdk, body=MailUpdateMailAddressPasswordBody(password="short")
    )
    expect_validation_error(response, ".password", "minLength")
    forward_id = create(
        sdk,
        tenant.project_id,
        DeMittwaldV1MailCreateForwardAddress(
            address=f"fw@{tenant.domain}", forward_addresses=["a@b.example"]
        ),
    )
    response = mail_update_mail_address_quota.sync_detailed(
        forward_id, client=sdk, body=MailUpdateMailAddressQuotaBody(quota_in_bytes=-1)
    )
    expect_validation_error(response, ".quotaInBytes")  # a forward address has no mailbox
    response = mail_create_deliverybox.sync_detailed(
        tenant.project_id, client=sdk, body=MailCreateDeliveryboxBody(description="x", password="short")
    )
    expect_validation_error(response, ".password", "minLength")

    # 403: another tenant's project, by UUID and by short id
    for project in (other_tenant.project_id, other_tenant.short_id):
        expect_error(
            mail_create_mail_address.sync_detailed(
                project, client=sdk, body=mailbox(f"x@{other_tenant.domain}")
            ),
            403,
            "Forbidden",
        )
        expect_error(mail_list_mail_addresses.sync_detailed(project, client=sdk), 403, "Forbidden")
        expect_error(
            mail_list_mail_addresses_for_user.sync_detailed(client=sdk, project_id=project), 403, "Forbidden"
        )
        expect_error(mail_list_delivery_boxes.sync_detailed(project, client=sdk), 403, "Forbidden")
        expect_error(
            mail_create_deliverybox.sync_detailed(
                project, client=sdk, body=MailCreateDeliveryboxBody(description="x", password=PASSWORD)
            ),
            403,
            "Forbidden",
        )
        expect_error(mail_list_project_mail_settings.sync_detailed(project, client=sdk), 403, "Forbidden")
        expect_error(
            mail_update_project_mail_setting.sync_detailed(
                project,
                MailUpdateProjectMailSettingMailSetting.WHITELIST,
                client=sdk,
                body=MailUpdateProjectMailSettingBodyType1(whitelist=["a@b.example"]),
            ),
            403,
            "Forbidden",
        )
        expect_error(project_get_project.sync_detailed(project, client=sdk), 403, "Forbidden")
    expect_error(project_get_project.sync_detailed(str(uuid.uuid4()), client=sdk), 403, "Forbidden")

    # 404: an unknown id and another tenant's id look the same
    foreign_address = create(other_sdk, other_tenant.project_id, mailbox(f"theirs@{other_tenant.domain}"))
    foreign_box = expect(
        mail_create_deliverybox.sync_detailed(
            other_tenant.project_id,
            client=other_sdk,
            body=MailCreateDeliveryboxBody(description="theirs", password=PASSWORD),
        ),
        201,
        MailCreateDeliveryboxResponse201,
    ).id
    for unknown in (uuid.uuid4(), foreign_address):
        expect_error(mail_get_mail_address.sync_detailed(unknown, client=sdk), 404, "NotFound")
        expect_error(mail_delete_mail_address.sync_detailed(unknown, client=sdk), 404, "NotFound")
        expect_error(
            mail_update_mail_address_quota.sync_detailed(
                unknown, client=sdk, body=MailUpdateMailAddressQuotaBody(quota_in_bytes=-1)
            ),
            404,
            "NotFound",
        )
        expect_error(
            mail_update_mail_address_catch_all.sync_detailed(
                unknown, client=sdk, body=MailUpdateMailAddressCatchAllBody(active=True)
            ),
            404,
            "NotFound",
        )
    for unknown in (uuid.uuid4(), foreign_box):
        expect_error(mail_get_delivery_box.sync_detailed(unknown, client=sdk), 404, "NotFound")
        expect_error(mail_delete_delivery_box.sync_detailed(unknown, client=sdk), 404, "NotFound")
        expect_error(
            mail_update_delivery_box_description.sync_detailed(
                unknown, client=sdk, body=MailUpdateDeliveryBoxDescriptionBody(description="mine now")
            ),
            404,
            "NotFound",
        )
    assert get(other_sdk, foreign_address).address == f"theirs@{other_tenant.domain}"
    assert get_box(other_sdk, foreign_box).description == "theirs"

    # 409: the address exists already (in any project); the SDK parses it with its default error model
    for duplicate in (f"mine@{tenant.domain}", f"MINE@{tenant.domain.upper()}"):
        response = mail_create_mail_address.sync_detailed(
            tenant.project_id, client=sdk, body=mailbox(duplicate)
        )
        expect_error(response, 409, "Conflict")
    response = mail_create_mail_address.sync_detailed(
        other_tenant.project_id, client=other_sdk, body=mailbox(f"theirs@{other_tenant.domain}")
    )
    expect_error(response, 409, "Conflict")
    response = mail_update_mail_address_address.sync_detailed(
        forward_id, client=sdk, body=MailUpdateMailAddressAddressBody(address=f"Mine@{tenant.domain}")
    )
    expect_error(response, 409, "Conflict")
    first_catch_all = create(sdk, tenant.project_id, mailbox(f"all@{tenant.domain}"))
    expect_no_content(
        mail_update_mail_address_catch_all.sync_detailed(
            first_catch_all, client=sdk, body=MailUpdateMailAddressCatchAllBody(active=True)
        )
    )
    response = mail_update_mail_address_catch_all.sync_detailed(
        address_id, client=sdk, body=MailUpdateMailAddressCatchAllBody(active=True)
    )
    expect_error(response, 409, "Conflict")


def test_operations_postwerk_does_not_offer(sdk: AuthenticatedClient, tenant: Tenant) -> None:
    """Backups, their recovery and the mail archive are in the SDK but not in Postwerk: a clean 404."""
    address_id = create(sdk, tenant.project_id, mailbox(f"archive@{tenant.domain}"))
    assert get(sdk, address_id).is_archived is False
    for response in (
        mail_list_backups_for_mail_address.sync_detailed(address_id, client=sdk),
        mail_recover_mail_address_emails.sync_detailed(address_id, "backup-1", client=sdk),
        mail_disable_mail_archive.sync_detailed(address_id, client=sdk),
    ):
        error = expect(response, 404, DeMittwaldV1CommonsError)
        assert error.type_ and error.message
