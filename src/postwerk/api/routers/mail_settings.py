"""Project mail settings: the sender blacklist and whitelist."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from starlette.responses import Response

from postwerk.api.deps import CallerDep, ContextDep, ProjectId
from postwerk.api.responses import json_response
from postwerk.api.routing import add_route
from postwerk.api.schemas import BlacklistIn, MailSettingIn, MailSettingsOut, WhitelistIn
from postwerk.domain.errors import ValidationFailed
from postwerk.service import mail_settings as service

router = APIRouter()

MailSetting = Literal["blacklist", "whitelist"]


def list_mail_settings(context: ContextDep, caller: CallerDep, projectId: ProjectId) -> Response:
    project_id, lists = service.get(context, caller, projectId)
    return json_response({"projectId": project_id, **lists})


def update_mail_setting(
    context: ContextDep,
    caller: CallerDep,
    projectId: ProjectId,
    mailSetting: Annotated[MailSetting, Path(description="The setting to update.")],
    body: MailSettingIn,
) -> None:
    entries = getattr(body, mailSetting, None)
    if entries is None:
        raise ValidationFailed.at(
            "", f"must have required property '{mailSetting}'", "required", missingProperty=mailSetting
        )
    service.replace(context, caller, projectId, mailSetting, entries)


def update_blacklist(context: ContextDep, caller: CallerDep, projectId: ProjectId, body: BlacklistIn) -> None:
    service.replace(context, caller, projectId, "blacklist", body.blacklist)


def update_whitelist(context: ContextDep, caller: CallerDep, projectId: ProjectId, body: WhitelistIn) -> None:
    service.replace(context, caller, projectId, "whitelist", body.whitelist)


add_route(
    router,
    "GET",
    "/v2/projects/{projectId}/mail-settings",
    list_mail_settings,
    operation_id="mail-list-project-mail-settings",
    status=200,
    model=MailSettingsOut,
    summary="List mail settings of a Project.",
)
add_route(
    router,
    "GET",
    "/v2/projects/{projectId}/mailsettings",
    list_mail_settings,
    operation_id="legacy-mail-list-project-mail-settings",
    status=200,
    model=MailSettingsOut,
    deprecated=True,
    summary="List mail settings of a Project (path of the public guides).",
)
add_route(
    router,
    "PATCH",
    "/v2/projects/{projectId}/mail-settings/{mailSetting}",
    update_mail_setting,
    operation_id="mail-update-project-mail-setting",
    status=204,
    summary="Update a mail setting of a Project.",
)
add_route(
    router,
    "PUT",
    "/v2/projects/{projectId}/mail-settings/{mailSetting}",
    update_mail_setting,
    operation_id="deprecated-mail-update-project-mail-setting",
    status=200,
    deprecated=True,
    summary="Update a mail setting of a Project.",
)
add_route(
    router,
    "PUT",
    "/v2/projects/{projectId}/mailsettings/blacklist",
    update_blacklist,
    operation_id="deprecated-mail-projectsetting-update-blacklist",
    status=200,
    deprecated=True,
    summary="Update the blacklist of a Project.",
)
add_route(
    router,
    "PUT",
    "/v2/projects/{projectId}/mailsettings/whitelist",
    update_whitelist,
    operation_id="deprecated-mail-projectsetting-update-whitelist",
    status=200,
    deprecated=True,
    summary="Update the whitelist of a Project.",
)
