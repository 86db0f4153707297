"""The review-coverage report as a PDF for auditors: the coverage page's facts laid out for
print (summary, reviewed-versus-never chart, one row per issue with who viewed and reviewed it
and how soon), rendered from HTML by Chromium (``bastion.core.pdf``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from statistics import median

from django.template.loader import render_to_string
from django.utils import timezone

from bastion.core.pdf import render_pdf
from bastion.errors.coverage import Coverage
from bastion.errors.digest import after_text

BAR_WIDTH = 480


@dataclass(frozen=True)
class Summary:
    issues: int
    reviewed: int
    never_reviewed: int
    median_review_after: str
    slowest_review_after: str

    @property
    def percent_reviewed(self) -> int:
        return round(100 * self.reviewed / self.issues) if self.issues else 100

    @property
    def reviewed_width(self) -> int:
        return round(BAR_WIDTH * self.reviewed / self.issues) if self.issues else BAR_WIDTH


def summarize(report: Coverage) -> Summary:
    delays = [r.first_review_after_seconds for r in report.rows if r.reviewed]
    known = [d for d in delays if d is not None]
    return Summary(
        issues=len(report.rows),
        reviewed=report.reviewed_count,
        never_reviewed=len(report.never_reviewed),
        median_review_after=after_text(int(median(known))) if known else "",
        slowest_review_after=after_text(max(known)) if known else "",
    )


def html_of(report: Coverage, generated_by: str, now: datetime | None = None) -> str:
    context = {
        "report": report,
        "project": report.project,
        "organization": report.project.organization,
        "summary": summarize(report),
        "bar_width": BAR_WIDTH,
        "generated_at": now or timezone.now(),
        "generated_by": generated_by,
        "rows": [(row, after_text(row.first_review_after_seconds)) for row in report.rows],
    }
    return render_to_string("errors/review_coverage_pdf.html", context)


def render(report: Coverage, generated_by: str) -> bytes:
    """The PDF bytes of this coverage report."""
    project = report.project
    label = (
        f"Review coverage · {project.organization.slug}/{project.slug} · "
        f"{report.period.start} to {report.period.end}"
    )
    return render_pdf(html_of(report, generated_by), footer_label=label)
