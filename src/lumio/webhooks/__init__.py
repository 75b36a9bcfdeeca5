"""Outgoing webhooks (issue 13): signed Standard Webhooks and Discord posts, fed by a
transactional outbox and sent by the delivery loop of `lumio worker`."""
