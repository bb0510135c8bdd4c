"""Wire bodies for the objects Postwerk returns: every required field of the official schema, always."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from postwerk.store.repository import AddressRecord

_NO_ARCHIVE = {"active": False, "quota": 0, "usedBytes": 0}


def mail_address(record: AddressRecord) -> dict[str, Any]:
    row = record.row
    responder: dict[str, Any] = {"active": row.autoresponder_active}
    if row.autoresponder_message is not None:
        responder["message"] = row.autoresponder_message
    if row.autoresponder_starts_at is not None:
        responder["startsAt"] = row.autoresponder_starts_at
    if row.autoresponder_expires_at is not None:
        responder["expiresAt"] = row.autoresponder_expires_at
    body: dict[str, Any] = {
        "id": row.id,
        "address": row.address,
        "projectId": row.project_id,
        "receivingDisabled": row.receiving_disabled,
        "isCatchAll": row.is_catch_all,
        "forwardAddresses": record.targets,
        "updatedAt": row.updated_at,
        "autoResponder": responder,
        "isArchived": False,
        "isBackupInProgress": False,
        "archive": _NO_ARCHIVE,
    }
    if row.is_mailbox:
        body["mailbox"] = {
            "name": row.mailbox_name,
            "sendingEnabled": row.sending_enabled,
            "passwordUpdatedAt": row.password_updated_at,
            "spamProtection": {
                "active": row.spam_active,
                "folder": row.spam_folder,
                "relocationMinSpamScore": row.spam_min_score,
                "autoDeleteSpam": row.spam_auto_delete,
            },
            "storageInBytes": {
                "limit": row.quota_bytes,
                "current": {"value": row.usage_bytes, "updatedAt": row.usage_updated_at},
            },
            "mailsystemSettings": {"rateLimitId": row.rate_limit_id},
        }
    if row.rate_limit_request_id is not None:
        body["rateLimitChangeRequest"] = {"rateLimitId": row.rate_limit_request_id}
    return body


def delivery_box(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "projectId": row.project_id,
        "description": row.description,
        "authenticationEnabled": row.authentication_enabled,
        "sendingEnabled": row.sending_enabled,
        "passwordUpdatedAt": row.password_updated_at,
        "updatedAt": row.updated_at,
    }


def project(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "shortId": row.short_id,
        "description": row.description,
        "enabled": row.enabled,
        "customerId": row.customer_id,
        "directories": {},
        "createdAt": row.created_at,
        "isReady": True,
        "readiness": "ready",
        "status": "ready" if row.enabled else "disabled",
        "statusSetAt": row.updated_at,
        "webStorageUsageInBytes": 0,
        "webStorageUsageInBytesSetAt": row.created_at,
        "backupStorageUsageInBytes": 0,
        "backupStorageUsageInBytesSetAt": row.created_at,
        "supportedFeatures": [],
        "serverGroupId": "postwerk",
        "deletionRequested": False,
    }


def project_list_item(row: Row[Any]) -> dict[str, Any]:
    return {**project(row), "customerMeta": {"id": row.customer_id}}
