"""One declaration per stage: a pydantic model of a stage's options is the single source of the CLI flags,
the Python API's keywords and the recipe step's keys (issue 12).

Declare a stage's options next to the stage, once:

    from longsift.options import Options, option

    class SelectOptions(Options):
        k: int | None = option(None, "How many records to keep.", flags=("--k", "-k"), deprecated=("--limit",))
        by: str = option("chars", "Length unit: chars, words, nltk, tokens.")
        workers: int | None = option(None, "Worker processes.", recipe=False)   # CLI and API only

- The flag is the field name with dashes (`max_new_tokens` -> `--max-new-tokens`; booleans get `--x/--no-x`)
  unless `flags=` names them. `deprecated=` lists old spellings: hidden on the CLI, and as recipe keys (the flag
  without dashes, `--limit` -> `limit`); using one prints ONE line on stderr
  (`warning: --limit is deprecated, use --k`) and its value is used.
- `cli=False`: no flag (a recipe/API-only key); `recipe=False`: no recipe key (e.g. `workers`, `quiet`).

On the CLI, either generate every flag from the model:

    @command_options(SelectOptions)
    def select(source: str = typer.Argument(...), *, options: SelectOptions) -> None: ...

(the decorator adds one keyword parameter per cli field the function does not declare itself, and passes the
validated model as `options`; `partial=True` passes instead a dict of only the flags the user gave, for stages
whose defaults come from elsewhere first, e.g. train: defaults < recipe < flags), or declare single flags:

    def run(..., output: Path | None = cli_option(RunOptions, "output")) -> None: ...

Deprecated aliases of `cli_option` flags work in every command registered through `longsift.cli.build()`
(it applies `with_aliases` to each command; `command_options` applies it itself). A command's `-o/--output` and
other CLI-only flags are fields too: subclass the stage model in the CLI module (`class SelectCommand(
SelectOptions): output: Path = option(..., "Output file.", flags=("-o", "--output"))`).

Python API: take the model, or its fields as keywords validated by `Model.from_keywords(kwargs, "select()")`.
Recipe steps (longsift/pipeline/steps.py): the step model is the stage model plus step-only keys (`name`,
`source`, ...); register it with `STEP_OPTIONS.register("uses", StepModel)` and read the options in the step
with `step_options(context, StepModel)` (`Model.from_recipe`: only recipe fields, deprecated keys renamed with
one warning at the pre-run check, a validation error as one `ConfigError` line).

`tests/test_one_declaration.py` walks every click command of `longsift` and every recipe step and checks flags,
defaults and help against the models (`declared_flags`, `cli_fields`, `recipe_fields` below).

Overrides: `apply_override(data, "stages.train.with.epochs=2")` is the one `key.path=value` parser (values are
YAML scalars; a list level is addressed by its items' `name`), used by `run --set` and `train --set`; `merge`
is the one deep merge (defaults < file < overrides).
"""

from __future__ import annotations

import enum
import functools
import inspect
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, get_args, get_origin

import typer
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo
from typer.models import OptionInfo

from longsift.errors import ConfigError

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound="Options")
B = TypeVar("B", bound=BaseModel)
META = "longsift"
_WRAPPED = "__longsift_aliases__"
MODELS = "__longsift_models__"  # on a command: the option models its flags were declared from


class Options(BaseModel):
    """Base of every stage's options: unknown keys are an error; a resolved options object does not change."""

    # protected_namespaces=(): fields such as `model_name` are options, not pydantic API (pydantic < 2.10 warns)
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    def narrowed(self, model: type[M]) -> M:
        """The options of `model` out of these (a command's or a step's options are its stage's plus their own)."""
        return model.model_validate(self.model_dump(include=set(model.model_fields)))

    @classmethod
    def from_recipe(
        cls: type[M], options: Mapping[str, Any], where: str = "options", *, warn: bool = True, **extra: Any
    ) -> M:
        """Validate recipe keys: only the model's recipe fields (deprecated keys renamed, with a warning unless
        `warn=False`: a recipe is checked, and warned about, once before it runs); `extra` are defaults the
        caller adds where the options give none (e.g. the recipe's seed)."""
        return checked(cls, options, where, set(recipe_fields(cls)), extra, warn)

    @classmethod
    def from_keywords(cls: type[M], options: Mapping[str, Any], where: str = "options") -> M:
        """The Python API's keywords: any field (deprecated names renamed with a warning), validated."""
        return checked(cls, options, where, set(cls.model_fields), {}, True)


def checked(
    model: type[M], options: Mapping[str, Any], where: str, allowed: set[str], extra: Mapping[str, Any], warn: bool
) -> M:
    data = renamed_keys(model, options, where, warn)
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown options {unknown}; known: {sorted(allowed)}")
    return validate(model, {**extra, **data}, where)


def validate(model: type[B], data: Mapping[str, Any], where: str) -> B:
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(f"{where}: {one_line(exc)}") from None


def one_line(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in exc.errors())


def option(
    default: Any = ...,
    help: str = "",
    *,
    flags: tuple[str, ...] | None = None,
    deprecated: tuple[str, ...] = (),
    cli: bool = True,
    recipe: bool = True,
    **field: Any,
) -> Any:
    """A model field that also declares its flag(s), old spellings, and where it may be set."""
    meta: dict[str, Any] = {"flags": list(flags) if flags else None, "deprecated": list(deprecated), "cli": cli,
                            "recipe": recipe}  # fmt: skip
    return Field(default, description=help, json_schema_extra={META: meta}, **field)


def meta(info: FieldInfo) -> dict[str, Any]:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    found = extra.get(META)
    return {"flags": None, "deprecated": [], "cli": True, "recipe": True, **(found if isinstance(found, dict) else {})}


def cli_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {name: info for name, info in model.model_fields.items() if meta(info)["cli"]}


def recipe_fields(model: type[BaseModel]) -> dict[str, FieldInfo]:
    return {name: info for name, info in model.model_fields.items() if meta(info)["recipe"]}


def is_bool(info: FieldInfo) -> bool:
    return strip_none(info.annotation) is bool


def declared_flags(model: type[BaseModel], name: str) -> list[str]:
    """The visible flag names of a field, as click spells them (`--x/--no-x` counts as `--x` and `--no-x`)."""
    info = model.model_fields[name]
    given = meta(info)["flags"]
    if given:
        return list(given)
    flag = "--" + name.replace("_", "-")
    return [flag, f"--no-{name.replace('_', '-')}"] if is_bool(info) else [flag]


def deprecated_flags(model: type[BaseModel], name: str) -> list[str]:
    return list(meta(model.model_fields[name])["deprecated"])


def key_of(flag: str) -> str:
    """The recipe key an old flag spelling stood for: `--max-examples` -> `max_examples`."""
    return flag.lstrip("-").replace("-", "_")


def default_of(info: FieldInfo) -> Any:
    return None if info.is_required() else info.get_default(call_default_factory=True)


# ---- deprecation -------------------------------------------------------------------------------------------


def warn_deprecated(old: str, new: str) -> None:
    """The one line an old spelling prints, on stderr (stdout stays the command's output)."""
    print(f"warning: {old} is deprecated, use {new}", file=sys.stderr)


def renamed_keys(model: type[BaseModel], options: Mapping[str, Any], where: str, warn: bool = True) -> dict[str, Any]:
    """Recipe keys with deprecated spellings renamed to their field (one warning each; both given: an error)."""
    old_to_new = {key_of(flag): name for name, info in model.model_fields.items() for flag in meta(info)["deprecated"]}
    data: dict[str, Any] = {}
    for key, value in options.items():
        new = old_to_new.get(key) if key not in model.model_fields else None
        if new is None:
            data[key] = value
            continue
        if new in options:
            raise ConfigError(f"{where}: {key!r} is the deprecated name of {new!r}; give only {new!r}")
        if warn:
            print(f"warning: {where}: key {key!r} is deprecated, use {new!r}", file=sys.stderr)
        data[new] = value
    return data


# ---- CLI ---------------------------------------------------------------------------------------------------


def strip_none(annotation: Any) -> Any:
    """`int | None` -> int (None-able flags are typed by what they hold)."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


@functools.cache
def choice_enum(choices: tuple[str, ...]) -> type[enum.Enum]:
    return enum.Enum("Choice", {value: value for value in choices}, type=str)  # type: ignore[return-value]


def cli_annotation(info: FieldInfo) -> Any:
    """The annotation Typer sees for a field. A Literal becomes a string Enum of its values (a choice on every
    Typer: Literal itself is read only from 0.19 on); `plain` turns the member back into its value."""
    inner = strip_none(info.annotation)
    if get_origin(inner) is not typing.Literal:
        return info.annotation
    choices = choice_enum(tuple(str(value) for value in get_args(inner)))
    return choices if inner is info.annotation else typing.Optional[choices]  # noqa: UP007, UP045 - built at run time


def plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def cli_option(model: type[BaseModel], name: str, **typer_kwargs: Any) -> Any:
    """The Typer option of one field: its flags, its default and its help, from the model."""
    info = model.model_fields[name]
    default = ... if info.is_required() else default_of(info)
    flags = declared_flags(model, name)
    decls = [f"{flags[0]}/{flags[1]}"] if is_bool(info) and len(flags) == 2 and flags[1].startswith("--no-") else flags
    result = typer.Option(default, *decls, help=info.description or None, **typer_kwargs)
    result.longsift = {"model": model, "field": name, "deprecated": deprecated_flags(model, name)}
    return result


def command_options(model: type[BaseModel], *, param: str = "options", partial: bool = False) -> Callable[[F], F]:
    """Give a command one flag per cli field of `model` it does not declare itself; it receives `param`:
    the validated model (its own parameters of the same names are passed to the model too), or with
    `partial=True` a dict of only the fields whose flags were given."""

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        own = [p for name, p in signature.parameters.items() if name != param]
        own_names = {p.name for p in own}
        added = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=cli_option(model, name),
                              annotation=cli_annotation(info))
            for name, info in cli_fields(model).items() if name not in own_names
        ]  # fmt: skip
        fields = set(model.model_fields)
        context_name, context_added = context_parameter(signature)
        added_all = [*added, *context_added]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            context = take_context(kwargs, context_name, context_added)
            values = {p.name: plain(kwargs.pop(p.name)) for p in added}
            shared = {name: kwargs[name] for name in own_names & fields if name in kwargs}
            if partial:
                given = explicit(context, {**values, **shared})
                return command(*args, **{param: given}, **kwargs)
            return command(*args, **{param: validate(model, {**values, **shared}, "options")}, **kwargs)

        positional = [p for p in own if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        keyword = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own if p not in positional]
        wrapper.__signature__ = signature.replace(parameters=[*positional, *keyword, *added_all])  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in (*own, *added_all)}
        del wrapper.__wrapped__  # typer must see the new signature, not the command's
        setattr(wrapper, MODELS, (model,))
        return with_aliases(wrapper)  # type: ignore[return-value]

    return decorate


def explicit(context: typer.Context | None, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values among `values` whose flags the user gave (click knows; a default is not a choice)."""
    if context is None:  # called from Python, not from the command line
        return dict(values)

    aliased = context.meta.get(ALIASED, set())

    def given(name: str) -> bool:
        if name in aliased:
            return True
        source = context.get_parameter_source(name)
        return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

    return {k: v for k, v in values.items() if given(k)}


CONTEXT = "longsift_context"
ALIASED = "longsift.aliased"  # context.meta: parameters set through a deprecated spelling


def context_parameter(signature: inspect.Signature) -> tuple[str, list[inspect.Parameter]]:
    """The command's `typer.Context` parameter, or one to add (Typer passes it by its annotation)."""
    for p in signature.parameters.values():
        if isinstance(p.annotation, type) and issubclass(p.annotation, typer.Context):
            return p.name, []
    return CONTEXT, [inspect.Parameter(CONTEXT, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)]


def take_context(kwargs: dict[str, Any], name: str, added: list[inspect.Parameter]) -> typer.Context | None:
    """The context; popped when this wrapper added it (the wrapped command does not take it)."""
    return kwargs.pop(name, None) if added else kwargs.get(name)


def with_aliases(command: F) -> F:
    """Add a hidden option per deprecated spelling of each `cli_option` of `command`: using one prints one
    warning line and sets the new option (unless that was given too: the new spelling wins)."""
    if getattr(command, _WRAPPED, False):
        return command
    signature = inspect.signature(command, eval_str=True)
    models = tuple(dict.fromkeys([*getattr(command, MODELS, ()), *declared_models(signature)]))
    aliases: list[tuple[str, str, str, str]] = []  # (hidden parameter, old flag, target parameter, new flag)
    added: list[inspect.Parameter] = []
    for p in signature.parameters.values():
        spec = getattr(p.default, "longsift", None)
        if not isinstance(p.default, OptionInfo) or not spec:
            continue
        for old in spec["deprecated"]:
            hidden = f"deprecated_{p.name}_{key_of(old)}"
            boolean = strip_none(p.annotation) is bool
            decl = f"{old}/--no-{old.lstrip('-')}" if boolean else old
            new = declared_flags(spec["model"], spec["field"])[0]
            aliases.append((hidden, old, p.name, new))
            annotation: Any = typing.Optional[strip_none(p.annotation)]  # noqa: UP007, UP045 - any annotation, at run time
            option_info = typer.Option(None, decl, hidden=True)
            added.append(inspect.Parameter(hidden, inspect.Parameter.KEYWORD_ONLY, default=option_info,
                                           annotation=annotation))  # fmt: skip
    if not aliases:
        setattr(command, _WRAPPED, True)
        setattr(command, MODELS, models)
        return command

    context_name, context_added = context_parameter(signature)
    added += context_added

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        context = take_context(kwargs, context_name, context_added)
        given = explicit(context, {target: None for _, _, target, _ in aliases})
        for hidden, old, target, new in aliases:
            value = kwargs.pop(hidden)
            if value is None:
                continue
            warn_deprecated(old, new)
            if target not in given:
                kwargs[target] = value
                if context is not None:
                    context.meta.setdefault(ALIASED, set()).add(target)
        return command(*args, **kwargs)

    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    keyword = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params if p not in positional]
    wrapper.__signature__ = signature.replace(parameters=[*positional, *keyword, *added])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in (*params, *added)}
    del wrapper.__wrapped__
    setattr(wrapper, _WRAPPED, True)
    setattr(wrapper, MODELS, models)
    return wrapper  # type: ignore[return-value]


def declared_models(signature: inspect.Signature) -> tuple[type[BaseModel], ...]:
    """The option models a command's flags come from (what tests/test_one_declaration.py checks it against)."""
    found = [spec["model"] for p in signature.parameters.values() if (spec := getattr(p.default, "longsift", None))]
    return tuple(dict.fromkeys(found))


# ---- overrides: the one key.path=value parser and the one deep merge ----------------------------------------


def parse_value(raw: str, assignment: str) -> Any:
    from longsift.safe_yaml import parse_yaml

    try:
        return parse_yaml(raw) if raw else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {assignment!r}: invalid YAML value ({' '.join(str(exc).split())})") from None


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Set `key.path=value` in `data` (value read as YAML; missing mapping levels are created). A list level
    is addressed by its items' `name`: `stages.train.with.epochs=2`."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {assignment!r} must look like KEY=VALUE (key.path=value)")
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            matches = [item for item in node if isinstance(item, dict) and item.get("name") == part]
            if not matches:
                raise ConfigError(f"override {assignment!r}: no stage named {part!r}")
            node = matches[0]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"override {assignment!r}: {'.'.join(parts[:i])} is a value, not a mapping")
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
    if not isinstance(node, dict):
        raise ConfigError(f"override {assignment!r}: {'.'.join(parts[:-1]) or 'the top level'} is not a mapping")
    node[parts[-1]] = parse_value(raw, assignment)


def apply_overrides(data: dict[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    for assignment in assignments:
        apply_override(data, assignment)
    return data


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Nested mappings merge key by key; anything else in `override` replaces what `base` had."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged
