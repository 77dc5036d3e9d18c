"""The one rendering leaf every page shares: the Jinja environment (templates under
grader/reporting/templates/, autoescape on, undefined names an error) and its filters."""
from __future__ import annotations

import jinja2

from grader.files import safe_name
from grader.reporting.markdown import render_markdown
from grader.results import format_points

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("grader.reporting", "templates"),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


ENV.filters["pts"] = lambda v: "—" if v is None else f"{v:g}"
ENV.filters["score"] = format_points
ENV.filters["markdown"] = render_markdown
ENV.filters["seconds"] = lambda v: "" if v is None else f"{float(v):.1f}"
ENV.filters["safe_name"] = safe_name
