"""Reporting: console and Markdown tables, merged reports, HTML, plots, claims, regression checks
and crop grids."""
