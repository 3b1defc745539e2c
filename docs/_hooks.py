"""MkDocs hooks (``hooks:`` in mkdocs.yml): the state diagram, and Sphinx roles in docstrings.

* The page ``reference/states.md`` holds the line ``<!-- state-diagram -->``; the build replaces
  it with a Mermaid diagram and a table made from ``anyjob._state.JOB_TRANSITIONS`` and
  ``RECORD_ONLY_TRANSITIONS``, the tables every state change goes through, so the picture cannot
  drift from the code. ``tests/test_docs.py`` checks the diagram against the tables too.
* The docstrings cross-reference in Sphinx's style (``:class:`~anyjob.Job```), which
  mkdocstrings shows as it is; the reference pages turn each role into a link (through
  mkdocs-autorefs) where the name is documented, and into plain code where it is not.
"""

from __future__ import annotations

import html
import re
from typing import Any

from anyjob import State
from anyjob._state import JOB_TRANSITIONS, RECORD_ONLY_TRANSITIONS

MARKER = "<!-- state-diagram -->"
PAGE = "reference/states.md"

#: What makes each change happen. Only words: which changes exist comes from the tables, and a
#: label for a change the tables do not allow fails the build.
WHY: dict[tuple[State, State], str] = {
    (State.CREATED, State.RUNNING): "run / a worker starts it",
    (State.RUNNING, State.CANCELING): "cancel()",
    (State.RUNNING, State.SUCCEEDED): "returns",
    (State.RUNNING, State.FAILED): "raises, times out",
    (State.RUNNING, State.CANCELED): "caller's scope cancelled",
    (State.CANCELING, State.CANCELED): "always",
    (State.SUCCEEDED, State.RUNNING): "run again",
    (State.FAILED, State.RUNNING): "run again",
    (State.CANCELED, State.RUNNING): "run again",
    (State.CREATED, State.CANCELED): "cancel while waiting",
    (State.FAILED, State.CREATED): "retry(id)",
    (State.CANCELED, State.CREATED): "retry(id)",
}


def transitions() -> list[tuple[State, State, bool]]:
    """Every allowed change as ``(from, to, record_only)``, in the enum's order."""
    found = [(old, new, False) for old in State for new in State if new in JOB_TRANSITIONS[old]]
    found += [(old, new, True) for old in State for new in State if new in RECORD_ONLY_TRANSITIONS[old]]
    for old, new, _ in found:  # the table and can_become agree, or the page would lie
        if not old.can_become(new, record=True):
            msg = f"{old.name} -> {new.name} is in a table but State.can_become refuses it"
            raise RuntimeError(msg)
    allowed = {(old, new) for old, new, _ in found}
    if unknown := set(WHY) - allowed:
        msg = f"docs/_hooks.py labels changes the transition table refuses: {sorted(map(str, unknown))}"
        raise RuntimeError(msg)
    return found


def mermaid() -> str:
    """The state diagram as a Mermaid ``stateDiagram-v2`` block."""
    lines = ["```mermaid", "stateDiagram-v2", "    direction LR", f"    [*] --> {State.CREATED.value}"]
    for old, new, record_only in transitions():
        label = WHY.get((old, new), "")
        if record_only:
            label = f"{label} (records only)".strip()
        lines.append(f"    {old.value} --> {new.value}" + (f": {label}" if label else ""))
    lines.append("    classDef done font-weight:bold")
    lines.append("    class " + ", ".join(s.value for s in State if s.is_done) + " done")
    lines.append("```")
    return "\n".join(lines)


def table() -> str:
    """The same changes as a Markdown table."""
    rows = ["| from | to | when | made by |", "|---|---|---|---|"]
    for old, new, record_only in transitions():
        who = "a manager's record only" if record_only else "a `Job` (and a record)"
        rows.append(f"| `{old.name}` | `{new.name}` | {WHY.get((old, new), '')} | {who} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """MkDocs hook: put the diagram and the table where the states page asks for them."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        msg = f"docs/{PAGE} lost its {MARKER} line: the state diagram has nowhere to go"
        raise RuntimeError(msg)
    return markdown.replace(MARKER, f"{mermaid()}\n\n{table()}")


#: A Sphinx role as Markdown renders it: ``:class:<code>~anyjob.Job</code>``, also with an
#: explicit target (``:meth:<code>title &lt;anyjob.stores.Store.open&gt;</code>``).
_ROLE = re.compile(r":(?:class|func|meth|attr|mod|exc|data|obj|const):<code>(?P<text>[^<]*)</code>")
#: The module each reference page documents: relative names in its docstrings are looked up there.
_MODULE_OF_PAGE = re.compile(r"^reference/(?P<name>[\w.]+)\.md$")


_HEADING_ID = re.compile(r'id="(?P<id>anyjob[\w.]*)"')


def _link(match: re.Match[str], module: str, section: str | None) -> str:
    """An autoref for one role; *section* is the id of the object whose docs hold it."""
    text = html.unescape(match["text"])
    if explicit := re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^>]+)>", text):
        title, target = explicit["title"], explicit["target"]
    else:
        target = text.removeprefix("~").removesuffix("()")
        title = target.rsplit(".", 1)[-1] if text.startswith("~") else text
    slug = ""
    if target.startswith("anyjob"):
        identifier = target
    elif "." in target or section is None:
        identifier = f"{module}.{target}"
    else:  # a bare name: a sibling of the member documented here, or a member of the class
        identifier = f"{section.rsplit('.', 1)[0]}.{target}"
        slug = f' slug="{html.escape(f"{section}.{target}")}"'
    return (
        f'<autoref identifier="{html.escape(identifier)}"{slug} optional>'
        f"<code>{html.escape(title)}</code></autoref>"
    )


def on_page_content(page_html: str, page: Any, **_: Any) -> str:
    """MkDocs hook: the Sphinx roles of the reference pages' docstrings become links."""
    found = _MODULE_OF_PAGE.match(page.file.src_uri)
    if found is None:
        return page_html
    module = "anyjob" if found["name"] in {"anyjob", "states"} else f"anyjob.{found['name']}"
    sections = [(heading.start(), heading["id"]) for heading in _HEADING_ID.finditer(page_html)]

    def replace(match: re.Match[str]) -> str:
        section = None
        for position, heading in sections:
            if position > match.start():
                break
            section = heading
        return _link(match, module, section)

    return _ROLE.sub(replace, page_html)
