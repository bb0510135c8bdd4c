"""Postwerk's own Postfix and Dovecot: configuration from the package's templates, rendered from settings
into the data folder (or for the system-wide services), and the supervision of both servers."""
