"""Postwerk's Postfix policy service (`check_policy_service`): the rules at RCPT time that Postfix's SQL
maps cannot express. Today: the mailbox quota, after alias expansion (`domain.delivery_quota`)."""
