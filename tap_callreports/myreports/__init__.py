"""MyReports: report requests whose results hold call rows."""
