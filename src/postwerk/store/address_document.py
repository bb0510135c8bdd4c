"""A mail address as the API returns it (`GET /v2/mail-addresses/{id}`, the lists), written by the database.

Every write of an address stores its document in the row (`repository`), so a list of 100 copies text. The
wire shape lives here rather than in `api` because the store keeps it; tests/store/test_json_documents.py
holds it against the same object built in Python, and every API response is checked against the official
schema.
"""

from __future__ import annotations

from postwerk.store.json_documents import Document, StoredIn, optional, ordered_array, when
from postwerk.store.tables import forward_targets, mail_addresses

_NO_ARCHIVE = {"active": False, "quota": 0, "usedBytes": 0}

_address = mail_addresses.c

MAIL_ADDRESS_DOCUMENT = Document(
    mail_addresses,
    {
        "id": _address.id,
        "address": _address.address,
        "projectId": _address.project_id,
        "receivingDisabled": _address.receiving_disabled,
        "isCatchAll": _address.is_catch_all,
        "forwardAddresses": ordered_array(
            forward_targets.c.target,
            where=forward_targets.c.address_id == _address.id,
            order_by=forward_targets.c.position,
        ),
        "updatedAt": _address.updated_at,
        "autoResponder": {
            "active": _address.autoresponder_active,
            "message": optional(_address.autoresponder_message),
            "startsAt": optional(_address.autoresponder_starts_at),
            "expiresAt": optional(_address.autoresponder_expires_at),
        },
        "isArchived": False,
        "isBackupInProgress": False,
        "archive": _NO_ARCHIVE,
        "mailbox": when(
            _address.is_mailbox,
            {
                "name": _address.mailbox_name,
                "sendingEnabled": _address.sending_enabled,
                "passwordUpdatedAt": _address.password_updated_at,
                "spamProtection": {
                    "active": _address.spam_active,
                    "folder": _address.spam_folder,
                    "relocationMinSpamScore": _address.spam_min_score,
                    "autoDeleteSpam": _address.spam_auto_delete,
                },
                "storageInBytes": {
                    "limit": _address.quota_bytes,
                    "current": {"value": _address.usage_bytes, "updatedAt": _address.usage_updated_at},
                },
                "mailsystemSettings": {"rateLimitId": _address.rate_limit_id},
            },
        ),
        "rateLimitChangeRequest": when(
            _address.rate_limit_request_id.is_not(None), {"rateLimitId": _address.rate_limit_request_id}
        ),
    },
    stored_in=StoredIn(_address.document, _address.document_version),
)
