"""tap-callreports: a Singer tap for contact-centre reporting (Talkdesk, Zendesk, MyReports)."""
