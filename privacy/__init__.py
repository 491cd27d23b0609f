"""Data-subject rights: erasure and export of one person's data, as jobs (issue 14)."""
