"""`roi` options derived from a settings model's fields (litgpt-style): each option's type,
choices, default and help come from the pydantic field, its flag from the parameter's name
(batch_sizes -> --batch-sizes), so a default and its help are stated once, in the model.

Two ways in. `options(Model)` gives one option per field (include / exclude pick them) for a
command taking `**values`. `@from_settings(Model)` fills in a command's parameters whose default
is `setting()`, in the order written, beside its own command-only options (typer.Option as
usual); a setting may name another model than the decorator's. A list field is a repeatable
option, or one comma-separated string (`comma=True`); a Literal is a choice; `note` adds what
this command does when the option is left out (or other words of its own). A Literal taken
`as_text` (for the model's own one-line refusal) shows its choices as the metavar.

With `unset=True` every derived option defaults to None, meaning "not given": the model's default
is said in the help instead, so a settings file read by the command can still set the field.
"""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import dataclass, field as dataclass_field, replace
from typing import Any, Callable, Iterable, Optional, Union

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo


@dataclass(frozen=True)
class Setting:
    """A command parameter's placeholder default: the option of a model field (`field`, else
    the parameter's name; a.b for field b of the nested model a), of `model` and `unset` when
    given here, else the decorator's. `as_text`: taken as a string the model or the command
    checks (its error names the field) rather than as click's choice; `option` goes to
    typer.Option (flags, metavar, autocompletion)."""

    field: Optional[str] = None
    note: str = ""
    comma: bool = False
    as_text: bool = False
    model: Optional[type[BaseModel]] = None
    unset: Optional[bool] = None
    option: dict = dataclass_field(default_factory=dict)


def setting(field: Optional[str] = None, *, note: str = "", comma: bool = False,
            as_text: bool = False, model: Optional[type[BaseModel]] = None,
            unset: Optional[bool] = None, **option: Any) -> Any:
    """The default to write for a parameter that `from_settings` derives from its model."""
    return Setting(field, note, comma, as_text, model, unset, option)


def options(model: type[BaseModel], include: Optional[Iterable[str]] = None,
            exclude: Iterable[str] = (), unset: bool = False) -> list[inspect.Parameter]:
    """One keyword parameter per field of `model` (those in `include`, less `exclude`), each
    with the one flag of its name (a bool: --smoke, no --no-smoke); a required field is a
    required option."""
    names = [n for n in (include or model.model_fields) if n not in set(exclude)]
    return [field_parameter(n, Setting(model=model, unset=unset,
                                       option={"param_decls": (_flag(n),)}))
            for n in names]


def from_settings(model: Optional[type[BaseModel]] = None, unset: bool = False) -> Callable:
    """Decorator: each parameter of the command whose default is `setting(...)` becomes the
    option of its field (of `model`, unless the setting names its own); the others stay as
    written. Where each comes from is kept on the command as `__settings__` ({parameter:
    (model, field, unset)}), for the test that they agree."""
    def derive(func: Callable) -> Callable:
        hints = typing.get_type_hints(func)
        params, sources = [], {}
        for p in inspect.signature(func).parameters.values():
            if isinstance(p.default, Setting):
                spec = _completed(p.default, p.name, model, unset)
                sources[p.name] = (spec.model, spec.field, spec.unset)
                p = field_parameter(p.name, spec).replace(kind=p.kind)
            else:
                p = p.replace(annotation=hints.get(p.name, p.annotation))
            params.append(p)
        return with_parameters(func, params, sources)
    return derive


def _completed(spec: Setting, name: str, model: Optional[type[BaseModel]],
               unset: bool) -> Setting:
    """`spec` with its field, model and unset filled in from the parameter and decorator."""
    return replace(spec, field=spec.field or name, model=spec.model or model,
                   unset=unset if spec.unset is None else spec.unset)


def with_parameters(func: Callable, params: list[inspect.Parameter],
                    sources: Optional[dict[str, tuple]] = None) -> Callable:
    """`func` with the signature (and annotations) typer reads set to `params`, and the
    settings its options come from ({parameter: (model, field, unset)}) as `__settings__`."""
    func.__signature__ = inspect.Signature(params)
    func.__annotations__ = {p.name: p.annotation for p in params}
    func.__settings__ = sources
    return func


def field_parameter(name: str, spec: Setting) -> inspect.Parameter:
    """The keyword parameter (typer option) `name` for the field `spec.field or name` of
    `spec.model`."""
    info = model_field(spec.model, spec.field or name)
    default = (... if info.is_required() else
               None if spec.unset else _cli_value(info.get_default(call_default_factory=True),
                                                  spec.comma))
    annotation = str if spec.as_text else _cli_type(info.annotation, spec.comma)
    if default is None:
        annotation = Optional[annotation]
    flags = spec.option.get("param_decls", ())  # none: typer's, from the name (--x/--no-x)
    extra = {k: v for k, v in spec.option.items() if k != "param_decls"}
    choices = _choices(info.annotation)
    if spec.as_text and choices and "metavar" not in extra:  # the model refuses the others
        extra["metavar"] = "[" + "|".join(choices) + "]"
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                             default=typer.Option(default, *flags,
                                                  help=field_help(info, spec), **extra))


def settings_values(command: Callable, values: dict[str, Any],
                    model: Optional[type[BaseModel]] = None) -> dict[str, Any]:
    """{field: value} of the options `command` derives (from `model` only, if given), taken
    from `values` (the command's parameters, by name); an unset option left out, so that the
    model's default holds."""
    return {field: values[name]
            for name, (source, field, unset) in command.__settings__.items()
            if (model is None or source is model) and not (unset and values[name] is None)}


def model_field(model: type[BaseModel], path: str) -> FieldInfo:
    """The field at `path`: a name, or names through nested models (economics.training_hours)."""
    *outer, name = path.split(".")
    for part in outer:
        model = model.model_fields[part].annotation
    return model.model_fields[name]


def field_help(info: FieldInfo, spec: Setting) -> Optional[str]:
    """The field's description, the command's note, and (unset) the model's default."""
    comma = "(comma-separated)" if spec.comma else ""
    text = " ".join(t for t in (info.description, comma, spec.note) if t)
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    if spec.unset and default is not None and "[default:" not in text:
        text += f" [default: {_cli_value(default, True)}]"
    return text or None


def _choices(annotation: Any) -> tuple:
    """The values of a Literal (an Optional one too); () for any other type."""
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return next((c for a in typing.get_args(annotation) if (c := _choices(a))), ())
    return ()


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _cli_value(value: Any, comma: bool) -> Any:
    """A field's default as the option holds it: a list joined with commas under `comma`."""
    if comma and isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return value


def _cli_type(annotation: Any, comma: bool) -> Any:
    """A type typer takes: constraints (PositiveInt) dropped, Optional unwrapped, a list of
    values a list (repeatable); with `comma`, one string (the command splits it)."""
    if comma:
        return str
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _cli_type(args[0], comma)
    if origin in (Union, types.UnionType) and len(args) == 1:  # Optional[X], X | None
        return _cli_type(args[0], comma)
    if origin in (list, tuple):
        return list[_cli_type(args[0], False)]
    return annotation
