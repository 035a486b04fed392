"""YAML loading with PyYAML's C loader (libyaml) where PyYAML has it, else its Python one: the
flows and the FAQ load several times faster (every start-up and every command reads them).
Both are safe loaders with the same results; error messages name the same line and column."""

from __future__ import annotations

from typing import Any

import yaml

SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """`yaml.safe_load`, with the C loader where available."""
    return yaml.load(text, Loader=SafeLoader)


def compose(text: str) -> yaml.Node | None:
    """`yaml.compose` (the node tree, with line numbers), with the C loader where available."""
    return yaml.compose(text, Loader=SafeLoader)
