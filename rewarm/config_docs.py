"""docs/configuration.md, generated from the typed configuration (rewarm/config.py): every key, its type, default,
bounds and description. `python -m rewarm.config_docs` rewrites it; a test keeps it current."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from rewarm.config import Settings
from rewarm.data_spec import sections

HEADER = """# Configuration: every key of rewarm.toml

Generated from `rewarm/config.py` and `rewarm/data_spec.py` by `python -m rewarm.config_docs`; do not edit by
hand. Every key is validated once, when the file is read; a mistake is one line naming the file and the key. The
same descriptions reach the parameter form of the `retrain` deployment in the Prefect UI.
"""


def _type(info: FieldInfo) -> str:
    text = str(info.annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
    return text.replace("Annotated[int, FieldInfo(annotation=NoneType, required=True, metadata=[Ge(ge=1)])]", "int")


def _bounds(info: FieldInfo) -> str:
    found = []
    for item in info.metadata:
        for key, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("min_length", "length >=")):
            value = getattr(item, key, None)
            if value is not None:
                found.append(f"{sign} {value}")
    return ", ".join(found)


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.default
    return "`" + (repr(list(value)) if isinstance(value, tuple) else repr(value)).replace("'", '"') + "`"


def render() -> str:
    """The Markdown page: one table per section."""
    lines = [HEADER]
    for section, model in sections(Settings).items():
        lines += [f"## [{section}]", "", "| key | type | default | bounds | what it does, and why the default |"]
        lines.append("| --- | --- | --- | --- | --- |")
        for key, field in model.model_fields.items():
            desc = (field.description or "").replace("|", "\\|")
            kind = _type(field).replace("|", "\\|")  # a pipe in a table cell splits it, even inside backticks
            row = f"| `{key}` | `{kind}` | {_default(field)} | {_bounds(field)} | {desc} |"
            lines.append(row.replace("| `` |", "| |"))
        lines.append("")
    return "\n".join(lines)


def main(path: str = "docs/configuration.md") -> int:
    Path(path).write_text(render())
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
