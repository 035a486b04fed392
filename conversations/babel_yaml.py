"""A Babel extractor for GoCua's YAML files (flows, FAQ) so `pybabel extract` sees their texts.

Every string found under a translatable key (see TRANSLATABLE_KEYS), directly or inside a list,
is a message id; the English text is the msgid, translators give the Vietnamese.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

import yaml

from conversations.yaml_load import compose

TRANSLATABLE_KEYS = frozenset(
    {"title", "text", "label", "prompt", "reasons", "question", "answer", "summary", "done_text",
     "description", "error", "hint"}
)


def _walk(node: yaml.Node, translatable: bool) -> Iterator[tuple[int, str]]:
    if isinstance(node, yaml.ScalarNode):
        if translatable and node.tag == "tag:yaml.org,2002:str" and node.value.strip():
            yield node.start_mark.line + 1, node.value
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _walk(item, translatable)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            key_name = key.value if isinstance(key, yaml.ScalarNode) else ""
            yield from _walk(value, key_name in TRANSLATABLE_KEYS)


def extract_yaml(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: dict[str, Any]
) -> Iterator[tuple[int, str, str, list[str]]]:
    root = compose(fileobj.read().decode("utf-8"))
    if root is None:
        return
    for lineno, message in _walk(root, False):
        yield lineno, "", message, []


def translatable_strings(text: str) -> list[str]:
    """The msgids a YAML document contributes (used by tests to check catalog coverage)."""
    root = compose(text)
    return [] if root is None else [message for _, message in _walk(root, False)]
