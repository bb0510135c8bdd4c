"""The submission milter `postwerk.dkim`: on Postfix's submission services only (never the MX, never the
SRS pass of forwarded mail), it refuses a message whose header `From:` the logged-in account may not send as
(`553 5.7.1`) and DKIM-signs every other one with the key of its From: domain (`postwerk.domain.dkim`).

Why a milter protocol implementation of our own (`protocol`, some 150 lines on asyncio) rather than a
library:
- pymilter, the usual choice, is a C extension over Sendmail's libmilter: installing Postwerk would need a
  C compiler, Python's headers and Debian's libmilter-dev on every machine (no wheels on PyPI; Debian's
  python3-milter serves only the system Python, not a virtualenv), its last release is from 2021, and
  libmilter runs every connection in a thread of its own and creates the socket itself, outside the
  group and mode handling that all of Postwerk's mail services share (`postwerk.unix_sockets`).
- The pure-Python implementations are not kept: purepythonmilter had one pre-release (2023),
  python-libmilter's last release is from 2022; miltertest is meant for the MTA side (tests use it so).
- dkimpy-milter (dkimpy's own milter) signs with keys from files named in its configuration, read at start,
  and knows nothing of logins and their addresses: neither the From: check nor keys from the database.
- What a signing filter needs of the protocol is small and stable (version 6 since Sendmail 8.14, 2007):
  option negotiation, macros, headers, body chunks, and three answers (continue, a reply code, insert a
  header). It is tested against two independent MTA sides: miltertest (tests/dkim) and Postfix itself.
The signatures are dkimpy's (`signing`), the library of dkimpy-milter, maintained and widely used.
"""
