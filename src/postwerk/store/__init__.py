"""Persistence: tables, repositories, migrations and the lookup views the mail servers read."""
