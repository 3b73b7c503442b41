"""Typed configs from data-only YAML: reading a file and turning pydantic's errors into one line.

Every message names the file, the field (with the row it sits in), what is allowed and what was
received, so the CLI can print it as `error: ...` and exit 2.
"""

from __future__ import annotations

import datetime as dt
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .errors import InputError

MAX_QPS = 1e8  # requests/s: a sanity bound on any rate (a scenario's, a load test's --qps)


# libyaml's parser when PyYAML was built with it (its wheels are): ~10x faster than the pure
# Python one on the shipped catalogs, with the same constructor (and so the same checks below).
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UniqueKeyLoader(_SafeLoader):
    """A safe YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last
    silently, so a typo'd override would win or lose without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: set = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` merges; explicit keys may override what it brings
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: SafeLoader names it below
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (each key may appear once)",
                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def safe_load(text: str) -> Any:
    """yaml.safe_load with duplicate keys refused (yaml.YAMLError, like any malformed YAML)."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


def jsonl_lines(text: str) -> list[str]:
    """The lines of a JSONL text: split at "\\n" only. str.splitlines() also splits at U+2028,
    U+0085, form feeds and the like, which json.dumps(ensure_ascii=False) leaves raw inside
    strings, so a record holding one would be torn in two."""
    return text.split("\n")


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of a file; InputError if it is missing, not a file, unreadable or binary."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} file {path} does not exist")
    if path.is_dir():
        raise InputError(f"{what} file {path} is a directory; expected a file")
    if not path.is_file():
        raise InputError(f"{what} file {path} is not a regular file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{what} file {path} is not UTF-8 text (undecodable byte at offset "
                         f"{e.start}): expected a text file") from None
    except OSError as e:
        raise InputError(f"{what} file {path} cannot be read: {e.strerror or e}") from None


def read_yaml(path: str | Path, what: str) -> Any:
    """The parsed content of a YAML file; InputError if it is missing, unreadable, binary,
    malformed or gives a key twice in one mapping."""
    text = read_text(path, what)
    try:
        return safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise InputError(f"{path}: not valid YAML{where}: {problem}") from None


def read_json_object(path: str | Path, what: str) -> dict:
    """A JSON file holding one object; InputError if it is missing, unreadable or not one."""
    import json

    text = read_text(path, what)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{what} file {path} cannot be read as JSON: {e}") from None
    if not isinstance(data, dict):
        raise InputError(f"{what} file {path}: must hold a JSON object; got "
                         f"{type(data).__name__}")
    return data


def check_names(values: dict, where: str) -> None:
    """Refuse a mapping of settings whose names are not all text (YAML reads `1:`, `null:`,
    `true:` or an anchored key as another type)."""
    bad = [k for k in values if not isinstance(k, str)]
    if bad:
        raise InputError(f"{where}: setting names must be text; got {bad[0]!r} "
                         f"({type(bad[0]).__name__})")


def validate(cls: type[BaseModel], data: Any, where: str) -> BaseModel:
    """`cls` built from `data`; a validation failure becomes one InputError line."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        raise InputError(f"{where}{describe(e, cls)}") from None


class Checked(BaseModel):
    """A model refusing a bad value when it is made with one InputError line (the first
    problem, as `refusal` words it: `describe`'s, unless the model words its own)."""

    def __init__(self, /, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as e:
            raise InputError(type(self).refusal(e)) from None

    @classmethod
    def refusal(cls, err: ValidationError) -> str:
        return describe(err, cls)


def as_option(err: ValidationError, cls: type[BaseModel]) -> str:
    """`describe`'s line with the field named as its command-line option (--batch-size)."""
    field, _, rest = describe(err, cls).partition(":")
    return f"--{field.replace('_', '-')}:{rest}"


def describe(err: ValidationError, cls: type[BaseModel]) -> str:
    """The first error of `err` as 'field: what is allowed; got what' (+ how many more)."""
    first = err.errors()[0]
    loc = tuple(first["loc"])
    field = ".".join(str(x) for x in loc)
    if first["type"] == "extra_forbidden":
        allowed = ", ".join(_fields_at(cls, loc[:-1]))
        text = f"{field}: unknown field; allowed fields: {allowed}"
    elif first["type"] == "missing":
        text = f"{field}: required field is missing"
    elif first["type"] == "value_error" and isinstance(first.get("input"), dict):
        # a rule across fields: its message names them
        text = (f"{field}: " if field else "") + _allowed(first["msg"])
    else:
        text = f"{field}: {_allowed(first['msg'])}; got {_short(first.get('input'))}"
    more = len(err.errors()) - 1
    return text + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")


def _allowed(msg: str) -> str:
    """pydantic says 'Value error, X' or 'Input should be X': keep the X, the rule itself."""
    return msg.removeprefix("Value error, ").replace("Input should be", "must be")


def _short(value: Any, limit: int = 60) -> str:
    if isinstance(value, dt.date):
        value = value.isoformat()
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fields_at(cls: type[BaseModel], loc: tuple) -> list[str]:
    """Names of the fields of the model found at `loc` (for 'unknown field' messages)."""
    model: Any = cls
    for part in loc:
        if not isinstance(part, str) or not _is_model(model):
            continue  # list indexes and dict keys keep the same element model
        field = model.model_fields.get(part)
        model = _model_in(field.annotation) if field else None
    return list(model.model_fields) if _is_model(model) else []


def _is_model(x: Any) -> bool:
    return isinstance(x, type) and issubclass(x, BaseModel)


def _model_in(annotation: Any) -> Any:
    if _is_model(annotation):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def iso_date(value: Any) -> Any:
    """YAML reads an unquoted 2025-11-30 as a date: keep dates as ISO strings."""
    return value.isoformat() if isinstance(value, dt.date) else value
