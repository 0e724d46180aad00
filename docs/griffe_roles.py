"""Render the docstrings' Sphinx roles (``:class:`Trajectory```) as Markdown.

The docstrings are numpydoc and name other objects with Sphinx roles, which
Markdown shows literally. This griffe extension, loaded by mkdocstrings
(``extensions`` in mkdocs.yml), turns a role naming a public name of
``explorer.__all__`` into a link to its reference entry and any other role
into a code span.
"""
from __future__ import annotations

import re
from typing import Any

import griffe

import explorer

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|exc|mod|data|obj):`~?\.?(?P<target>[^`]+)`")
PUBLIC = set(explorer.__all__)


def _markdown(match: re.Match[str]) -> str:
    target = match["target"]
    name = target.rsplit(".", 1)[-1]
    if name in PUBLIC and (target == name or target.startswith("explorer.")):
        return f"[`{name}`][explorer.{name}]"
    return f"`{target}`"


class SphinxRoles(griffe.Extension):
    """Rewrite Sphinx roles in every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_markdown, obj.docstring.value)
