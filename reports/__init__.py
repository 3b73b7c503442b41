"""reports: pure functions from tables and plans to Markdown, HTML and figures."""
