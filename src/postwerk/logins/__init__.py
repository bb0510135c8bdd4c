"""Dovecot's password database, answered by Postwerk with the domain's own normalisation of a login."""
