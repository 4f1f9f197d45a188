"""Render `templates/`: the literal files that land on hosts; values come from Python."""

from __future__ import annotations

import jinja2

from labhub.local import REPO

TEMPLATES = REPO / "templates"

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    undefined=jinja2.StrictUndefined,  # a missing value is an error, never an empty string
    keep_trailing_newline=True,
    autoescape=False,
)


def render(name: str, **values) -> str:
    return _environment.get_template(name).render(**values)
