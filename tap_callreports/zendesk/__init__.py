"""Zendesk: job statuses (cursor-paged list, show_many)."""
