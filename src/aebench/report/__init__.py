"""The benchmark report: a self-contained HTML page and a Markdown summary (see `build`)."""

from aebench.report.build import build_report, collect, format_value

__all__ = ["build_report", "collect", "format_value"]
