"""Reports for managers: sessions, handovers, customers' requests and survey results per
day, technician and team, counted by the database (docs/reports.md)."""

from .query import Grouping, ReportQuery
from .service import AVERAGES, FIGURES, CategoryRow, Report, ReportRow, Reports

__all__ = ["AVERAGES", "FIGURES", "CategoryRow", "Grouping", "Report", "ReportQuery",
           "ReportRow", "Reports"]
