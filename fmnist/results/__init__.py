"""What finished runs leave, read back: a run directory (once), sweep summaries, the
leaderboard, and the Markdown report of an analysis."""
