"""YAML from outside (rules, universe, scenarios), parsed so that no file can blow up or lie:

- no aliases or anchors (`&a` / `*a`): a 633-byte alias bomb decoded to 63.5 MB;
- no duplicate keys: PyYAML keeps the last silently (a second `hard_cap_pct: 500` won);
- no merge keys (`<<`) and no explicit tags (`!!python/…`, `!!pairs`…): plain data only;
- nesting at most MAX_DEPTH deep (PyYAML composes recursively: 20,000 levels was a RecursionError);
- integers of at most MAX_INT_DIGITS digits; a value the constructor cannot build (a date like
  2026-02-30) is a refusal at its line, not a ValueError from deep inside PyYAML.

The file's size and encoding are checked before (config/text_file.py). Errors are YamlError: one
line with the line number. The events are checked in a first pass (libyaml's parser when present,
fast), so nothing is composed before the whole document is known to be bounded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    NodeEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from protocol.parse import printable

MAX_DEPTH = 32  # the rig's files nest 5 deep (a scenario's event field); a desk needs no more
MAX_INT_DIGITS = 40  # an int64 has 19; beyond this a number is a typo or an attack
MERGE_TAG = "tag:yaml.org,2002:merge"

_Base: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlError(ValueError):
    """Why the text is refused; `str()` is `line N: problem` (or the problem alone)."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        problem = printable(problem)
        super().__init__(f"line {line}: {problem}" if line is not None else problem)
        self.problem = problem
        self.line = line

    @property
    def where(self) -> str:
        return f"line {self.line}" if self.line is not None else "(file)"


def _line(mark: Any) -> int | None:
    return mark.line + 1 if mark is not None else None


class _Bounded(SafeConstructor):
    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError) as err:  # e.g. a date that is not in the calendar
            raise ConstructorError(None, None, f"{node.value if isinstance(node, ScalarNode) else node.tag}: {err}", node.start_mark) from None

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int | None] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:
                raise ConstructorError(None, None, "merge keys (<<) are not allowed", key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                raise ConstructorError(None, None, "a mapping key must be a plain value", key_node.start_mark) from None
            if key in seen:
                raise ConstructorError(None, None, f"duplicate key {str(key)[:60]!r} (first on line {first})", key_node.start_mark)
            seen[key] = _line(key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


class _Loader(_Bounded, _Base):
    pass


def _bounded_int(loader: _Loader, node: ScalarNode) -> int:
    digits = sum(ch.isdigit() for ch in str(node.value))
    if digits > MAX_INT_DIGITS:
        raise ConstructorError(None, None, f"an integer of {digits} digits is over the limit of {MAX_INT_DIGITS}", node.start_mark)
    return loader.construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _bounded_int)


def _check_events(text: str) -> None:
    depth = 0
    documents = 0
    for event in yaml.parse(text, Loader=_Loader):
        line = _line(event.start_mark)
        if isinstance(event, DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise YamlError("one YAML document only (found a second `---`)", line)
        if isinstance(event, AliasEvent):
            raise YamlError("aliases (*name) are not allowed: write the value out", line)
        if isinstance(event, NodeEvent) and event.anchor is not None:
            raise YamlError("anchors (&name) are not allowed", line)
        if isinstance(event, NodeEvent) and getattr(event, "tag", None) not in (None, "!"):
            raise YamlError(f"explicit tags ({str(event.tag)[:40]}) are not allowed: plain data only", line)  # type: ignore[attr-defined]
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlError(f"nested deeper than the limit of {MAX_DEPTH} levels", line)
        elif isinstance(event, CollectionEndEvent):
            depth -= 1


def load(text: str) -> Any:
    """The document's data (None for an empty one); YamlError for anything refused or invalid."""
    try:
        _check_events(text)
        return yaml.load(text, Loader=_Loader)  # a SafeLoader, bounded above
    except ConstructorError as err:  # a refusal of ours, or a value PyYAML cannot build
        raise YamlError(str(err.problem), _line(err.problem_mark)) from None
    except yaml.MarkedYAMLError as err:
        line = _line(err.problem_mark or err.context_mark)
        if "nesting depth" in str(err.problem):  # libyaml's own guard, met first on deep flow collections
            raise YamlError(f"nested deeper than the limit of {MAX_DEPTH} levels", line) from None
        raise YamlError(f"not valid YAML: {err.problem or err.context}", line) from None
    except yaml.reader.ReaderError as err:  # a character YAML does not allow (e.g. NUL)
        code = ord(err.character) if isinstance(err.character, str) else int(err.character)
        raise YamlError(f"character U+{code:04X} is not allowed in YAML", text.count("\n", 0, max(err.position, 0)) + 1) from None
    except yaml.YAMLError as err:
        raise YamlError(f"not valid YAML: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None


def line_of(text: str, path: Sequence[str | int]) -> int | None:
    """The line of the value at `path` (mapping keys and list indexes, as a validation error's
    `loc` gives them) in a document `load` accepted; the deepest line found on the way when the
    path goes on past the file (a default, an expanded list), None for an empty document."""
    node = yaml.compose(text, Loader=_Loader)
    line = _line(node.start_mark) if node is not None else None
    for part in path:
        if isinstance(node, MappingNode):  # a key's line: `order:` rather than the first line under it
            pair = next(((key, value) for key, value in node.value if isinstance(key, ScalarNode) and key.value == str(part)), None)
            if pair is None:
                break
            line, node = _line(pair[0].start_mark), pair[1]
        elif isinstance(node, SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = _line(node.start_mark)
        else:
            break
    return line
