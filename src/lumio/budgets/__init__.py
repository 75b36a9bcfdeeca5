"""Operators' view of every platform's shared budget (issue 15): GET /v1/admin/budgets."""
