"""Postwerk's sending rate limits for Postfix's submission services: a Postfix policy service
(`check_policy_service` in `smtpd_end_of_data_restrictions`) that counts every recipient of every message
sent by a logged-in mailbox or delivery box over a sliding hour, in the database, and refuses a message over
the account's tier with `450 4.7.1`. The rules: `postwerk.domain.sending_rate`; the counts:
`postwerk.store.sending_rate`; the service: `postwerk.ratelimit.service`.

Why a service of its own (`python -m postwerk.ratelimit`, socket `ratelimit.sock`) and not a second handler in
`postwerk.policy`: the two fail in opposite directions. The quota check at RCPT must let mail through when it
cannot answer (`DUNNO`, a quota limits growth and must not stop inbound mail), the rate limit must hold mail
back (`451`: sending unchecked is how an account gets the provider's addresses blocklisted). With separate
sockets each has its own Postfix `default_action` for an unreachable service and its own answer to internal
errors, and neither's outage or crash (the supervisor restarts each alone) touches the other's mail. It also
writes (one short transaction per message), while the policy service only reads; and it runs only for the
submission services, never on the MX.
"""
