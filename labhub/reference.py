"""docs/configuration.md, generated from the config model: every key, its type, default and
meaning. `python -m labhub.reference > docs/configuration.md`; a quick test checks it is current."""

from __future__ import annotations

import inspect
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from labhub.config import LabHost


def _type_name(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " or ".join(repr(a) for a in args)
    if origin in (list, dict):
        return f"{origin.__name__} of " + ", ".join(_type_name(a) for a in args)
    if args:  # X | None
        return " or ".join(_type_name(a) for a in args)
    return "none" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


def reference() -> str:
    """docs/configuration.md: every field of every model, its default and its meaning."""
    lines = [
        "# Configuration reference",
        "",
        "Every key a host's data can hold (inventory, `group_data/`), with its default and meaning.",
        "Generated from `labhub/config/` by `python -m labhub.reference > docs/configuration.md`; a test",
        "checks it is current. Unknown keys, wrong types and bad values stop the run before any host",
        "is contacted. pyinfra's own keys (`ssh_*`, `_sudo`, ...) may sit beside these.",
        "",
    ]
    models: list[type[BaseModel]] = [LabHost]  # nested models are appended as they are met
    for model in models:
        lines += [f"## `{model.__name__}`", "", inspect.cleandoc(model.__doc__ or ""), "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            annotation = field.annotation
            nested = [a for a in (getattr(annotation, "__args__", ()) or (annotation,)) if isinstance(a, type) and issubclass(a, BaseModel)]
            models += [m for m in nested if m not in models]
            kind = _type_name(annotation)
            if field.is_required():
                default = "required"
            elif field.default_factory is not None:
                default = f"`{field.default_factory()!r}`" if not nested else "see below"
            else:
                default = f"`{field.default!r}`"
            meaning = (field.description or "").replace("|", "\\|")
            lines.append(f"| `{name}` | {kind} | {default} | {meaning} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(reference(), end="")
