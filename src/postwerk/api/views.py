"""Wire bodies for the objects Postwerk returns: every required field of the official schema, always."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row


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
