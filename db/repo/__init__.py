"""Queries grouped by the part of the domain they serve."""
