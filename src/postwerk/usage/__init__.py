"""Mailbox usage from Dovecot into the store, so the API shows it (`mailbox.storageInBytes.current`)."""
