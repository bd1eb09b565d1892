"""Reporting: the results schema and its I/O, environment facts, tables, reports, HTML, plots, claims,
regression checks and crop grids."""
