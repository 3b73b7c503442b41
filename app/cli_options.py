"""`roi` options derived from a settings model's fields (litgpt-style): each option's type,
choices, default and help come from the pydantic field, its flag from the parameter's name
(batch_sizes -> --batch-sizes), so a default and its help are stated once, in the model.

Two ways in. `options(Model)` gives one option per field (include / exclude pick them) for a
command taking `**values`. `@from_settings(Model)` fills in a command's parameters whose default
is `setting()`, in the order written, beside its own command-only options (typer.Option as
usual). A list field is a repeatable option, or one comma-separated string (`comma=True`); a
Literal is a choice; `note` adds what this command does when the option is left out (or other words of its own).

With `unset=True` every derived option defaults to None, meaning "not given": the model's default
is said in the help instead, so a settings file read by the command can still set the field.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field as dataclass_field
from typing import Any, Callable, Iterable, Optional, Union

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo


@dataclass(frozen=True)
class Setting:
    """A command parameter's placeholder default: the option of a model field (`field`, else
    the parameter's name; a.b for field b of the nested model a); `as_text`: taken as a string the model checks (its error names the
    field) rather than as click's choice; `option` goes to typer.Option (flags, metavar,
    autocompletion)."""

    field: Optional[str] = None
    note: str = ""
    comma: bool = False
    as_text: bool = False
    option: dict = dataclass_field(default_factory=dict)


def setting(field: Optional[str] = None, *, note: str = "", comma: bool = False,
            as_text: bool = False, **option: Any) -> Any:
    """The default to write for a parameter that `from_settings` derives from its model."""
    return Setting(field, note, comma, as_text, option)


def options(model: type[BaseModel], include: Optional[Iterable[str]] = None,
            exclude: Iterable[str] = (), unset: bool = False) -> list[inspect.Parameter]:
    """One keyword parameter per field of `model` (those in `include`, less `exclude`), each
    with the one flag of its name (a bool: --smoke, no --no-smoke); a required field is a
    required option."""
    names = [n for n in (include or model.model_fields) if n not in set(exclude)]
    return [field_parameter(model, n, Setting(option={"param_decls": (_flag(n),)}), unset)
            for n in names]


def from_settings(model: type[BaseModel], unset: bool = False) -> Callable:
    """Decorator: each parameter of the command whose default is `setting(...)` becomes the
    option of its field of `model`; the others stay as written. The fields used are kept on the
    command as `__settings__` (model, {parameter: field}, unset), for the test that they agree."""
    def derive(func: Callable) -> Callable:
        hints = typing.get_type_hints(func)
        params, fields = [], {}
        for p in inspect.signature(func).parameters.values():
            if isinstance(p.default, Setting):
                fields[p.name] = p.default.field or p.name
                p = field_parameter(model, p.name, p.default, unset).replace(kind=p.kind)
            else:
                p = p.replace(annotation=hints.get(p.name, p.annotation))
            params.append(p)
        return with_parameters(func, params, model, fields, unset)
    return derive


def with_parameters(func: Callable, params: list[inspect.Parameter],
                    model: Optional[type[BaseModel]] = None,
                    fields: Optional[dict[str, str]] = None, unset: bool = False) -> Callable:
    """`func` with the signature (and annotations) typer reads set to `params`; `model`,
    `fields` ({parameter: field}, default: every parameter, same name) and `unset` kept as
    `__settings__`."""
    func.__signature__ = inspect.Signature(params)
    func.__annotations__ = {p.name: p.annotation for p in params}
    fields = fields or {p.name: p.name for p in params}
    func.__settings__ = (model, fields, unset) if model else None
    return func


def field_parameter(model: type[BaseModel], name: str, spec: Setting,
                    unset: bool) -> inspect.Parameter:
    """The keyword parameter (typer option) `name` for the field `spec.field or name`."""
    info = model_field(model, spec.field or name)
    default = (... if info.is_required() else
               None if unset else _cli_value(info.get_default(call_default_factory=True),
                                             spec.comma))
    annotation = str if spec.as_text else _cli_type(info.annotation, spec.comma)
    if default is None:
        annotation = Optional[annotation]
    flags = spec.option.get("param_decls", ())  # none: typer's, from the name (--x/--no-x)
    extra = {k: v for k, v in spec.option.items() if k != "param_decls"}
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                             default=typer.Option(default, *flags,
                                                  help=field_help(info, spec, unset), **extra))


def model_field(model: type[BaseModel], path: str) -> FieldInfo:
    """The field at `path`: a name, or names through nested models (economics.training_hours)."""
    *outer, name = path.split(".")
    for part in outer:
        model = model.model_fields[part].annotation
    return model.model_fields[name]


def field_help(info: FieldInfo, spec: Setting, unset: bool) -> Optional[str]:
    """The field's description, the command's note, and (unset) the model's default."""
    text = " ".join(t for t in (info.description, spec.note) if t)
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    if unset and default is not None and "[default:" not in text:
        text += f" [default: {_cli_value(default, True)}]"
    return text or None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _cli_value(value: Any, comma: bool) -> Any:
    """A field's default as the option holds it: a list joined with commas under `comma`."""
    if comma and isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return value


def _cli_type(annotation: Any, comma: bool) -> Any:
    """A type typer takes: constraints (PositiveInt) dropped, Optional unwrapped, a list of
    values a list (repeatable) or, with `comma`, one string."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _cli_type(args[0], comma)
    if origin is Union and len(args) == 1:
        return _cli_type(args[0], comma)
    if origin in (list, tuple):
        return str if comma else list[_cli_type(args[0], False)]
    return annotation
