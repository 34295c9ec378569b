"""Logical lines to typed instructions and stages (BuildKit's ``parser.Parse`` then ``instructions.Parse``).

Every error is ``InvalidArgument`` worded ``NAME:LINE: what is wrong``.
"""

from __future__ import annotations

import re
from typing import Any

from pallet.build.dockerfile import words
from pallet.build.dockerfile.flags import FlagError, parse_duration, parse_flags, parse_mount
from pallet.build.dockerfile.heredocs import Heredoc, openers_in
from pallet.build.dockerfile.instructions import (
    Add,
    Arg,
    ArgDecl,
    Cmd,
    Copy,
    Dockerfile,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Instruction,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stage,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from pallet.build.dockerfile.lines import LineReader
from pallet.errors import InvalidArgument

__all__ = ["parse", "parse_ast"]

_HEREDOC_COMMANDS = ("run", "copy", "add")
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9_.-]*$")
_ONBUILD_PREFIX = re.compile(r"(?i)^\s*ONBUILD\s*")
_NETWORKS = ("default", "none", "host")


class _Syntax(Exception):
    """A problem in one instruction; ``parse`` adds the file name and line."""


def _node_args(command: str, rest: str, escape: str) -> tuple[list[str], bool]:
    """Docker's argument values for one instruction, and whether they were the JSON form."""
    try:
        if command in ("add", "copy", "volume"):
            array = words.parse_json_array(rest)
            return (array, True) if array is not None else (words.split_whitespace(rest), False)
        if command in ("cmd", "entrypoint", "run", "shell"):
            if rest == "":
                return [], False
            array = words.parse_json_array(rest)
            return (array, True) if array is not None else ([rest], False)
        if command == "healthcheck":
            return _health_args(rest)
    except words.JsonArrayError as error:
        raise _Syntax(str(error)) from None
    if command == "arg":
        return words.parse_words(rest, escape), False
    if command in ("env", "label"):
        return _name_values(command, rest, escape), False
    if command in ("expose", "from"):
        return words.split_whitespace(rest), False
    if command in ("maintainer", "stopsignal", "user", "workdir"):
        return ([rest] if rest else []), False
    if command == "onbuild":
        return [], False
    return [""], False  # an unknown instruction: BuildKit's parseIgnore, one empty value


def _health_args(rest: str) -> tuple[list[str], bool]:
    parts = re.split(r"\s", rest, maxsplit=1)
    kind = parts[0]
    command = parts[1].lstrip() if len(parts) == 2 else ""
    if not kind:
        return [], False
    if command == "":
        return [kind], False
    array = words.parse_json_array(command)
    return ([kind, *array], True) if array is not None else ([kind, command], False)


def _name_values(command: str, rest: str, escape: str) -> list[str]:
    found = words.parse_words(rest, escape)
    if not found:
        return []
    if "=" not in found[0]:
        # the legacy form: NAME VALUE (the rest of the line is the value)
        parts = re.split(r"[\t\v\f\r ]+", rest, maxsplit=1)
        if len(parts) < 2:
            raise _Syntax(f"{command.upper()} must have two arguments")
        return [parts[0], parts[1], ""]
    values: list[str] = []
    for word in found:
        if "=" not in word:
            raise _Syntax(f"Syntax error - can't find = in {word!r}. Must be of the form: name=value")
        name, _, value = word.partition("=")
        values += [name, value, "="]
    return values


def _node(text: str, start: int, end: int, escape: str) -> Instruction:
    """The untyped instruction (docker's AST node) of one logical line, heredocs not yet attached."""
    command, rest = words.split_command(text)
    flags, rest = words.extract_flags(rest)
    args, json_form = _node_args(command, rest, escape)
    return Instruction(
        command=command,
        line=start,
        end_line=end,
        original=text,
        flags=tuple(flags),
        args=tuple(args),
        json=json_form,
    )


def _flag_values(node: Instruction) -> dict[str, str | list[str] | bool]:
    try:
        return parse_flags(node.command, node.flags)
    except FlagError as error:
        raise _Syntax(str(error)) from None


def _str_flag(flags: dict[str, str | list[str] | bool], name: str) -> str | None:
    value = flags.get(name)
    return value if isinstance(value, str) else None


def _list_flag(flags: dict[str, str | list[str] | bool], name: str) -> tuple[str, ...]:
    value = flags.get(name)
    return tuple(value) if isinstance(value, list) else ()


def _bool_flag(flags: dict[str, str | list[str] | bool], name: str) -> bool | None:
    value = flags.get(name)
    return value if isinstance(value, bool) else None


def _pairs(node: Instruction) -> tuple[tuple[str, str], ...]:
    args = node.args
    return tuple((args[i], args[i + 1]) for i in range(0, len(args) - 2, 3))


def _typed(node: Instruction) -> Instruction:
    """The typed instruction for a node; raises ``_Syntax`` with docker's words."""
    base: dict[str, Any] = {
        "command": node.command,
        "line": node.line,
        "end_line": node.end_line,
        "original": node.original,
        "flags": node.flags,
        "args": node.args,
        "json": node.json,
        "heredocs": node.heredocs,
    }
    flags = _flag_values(node)
    keyword = node.command.upper()
    args = node.args
    match node.command:
        case "from":
            if len(args) not in (1, 3) or (len(args) == 3 and args[1].lower() != "as"):
                raise _Syntax("FROM requires either one or three arguments")
            stage_name = None
            if len(args) == 3:
                stage_name = args[2].lower()
                if not _STAGE_NAME.match(stage_name):
                    raise _Syntax(
                        f"invalid name for build stage: {args[2]!r}, name can't start with a number or contain symbols"
                    )
            return From(**base, image=args[0], stage_name=stage_name, platform=_str_flag(flags, "platform"))
        case "run":
            if not args and not node.json:
                raise _Syntax("RUN requires at least one argument")
            network = _str_flag(flags, "network")
            if network is not None and network not in _NETWORKS:
                raise _Syntax(f"unsupported network mode {network!r}")
            try:
                mounts = tuple(parse_mount(text) for text in _list_flag(flags, "mount"))
            except FlagError as error:
                raise _Syntax(str(error)) from None
            return Run(
                **base,
                command_line=args,
                mounts=mounts,
                network=network,
                security=_str_flag(flags, "security"),
            )
        case "cmd" | "entrypoint":
            if not args and not node.json:
                raise _Syntax(f"{keyword} requires at least one argument")
            kind = Cmd if node.command == "cmd" else Entrypoint
            return kind(**base, command_line=args)
        case "shell":
            if not node.json:
                raise _Syntax("SHELL requires the arguments to be in JSON form")
            if not args:
                raise _Syntax("SHELL requires at least one argument")
            return Shell(**base, shell=args)
        case "env" | "label":
            if not args:
                raise _Syntax(f"{keyword} requires at least one argument")
            pairs = _pairs(node)
            if node.command == "env" and any(name == "" for name, _ in pairs):
                raise _Syntax("ENV names can not be blank")
            return (Env if node.command == "env" else Label)(**base, pairs=pairs)
        case "arg":
            if not args:
                raise _Syntax("ARG requires at least one argument")
            decls = []
            for word in args:
                name, has_default, default = word.partition("=")
                if name == "":
                    raise _Syntax("ARG names can not be blank")
                decls.append(ArgDecl(name=name, default=default if has_default else None))
            return Arg(**base, decls=tuple(decls))
        case "expose":
            if not args:
                raise _Syntax("EXPOSE requires at least one argument")
            return Expose(**base, ports=args)
        case "volume":
            if not args:
                raise _Syntax("VOLUME requires at least one argument")
            if any(path.strip() == "" for path in args):
                raise _Syntax("VOLUME specified can not be an empty string")
            return Volume(**base, paths=args)
        case "workdir" | "user" | "stopsignal" | "maintainer":
            if len(args) != 1:
                raise _Syntax(f"{keyword} requires exactly one argument")
            if node.command == "workdir":
                return Workdir(**base, path=args[0])
            if node.command == "user":
                return User(**base, user=args[0])
            if node.command == "stopsignal":
                return StopSignal(**base, signal=args[0])
            return Maintainer(**base, name=args[0])
        case "healthcheck":
            return _healthcheck(node, base, flags)
        case "copy" | "add":
            return _copy(node, base, flags)
    raise _Syntax(f"unknown instruction: {node.original.split()[0]}")


def _healthcheck(
    node: Instruction, base: dict[str, Any], flags: dict[str, str | list[str] | bool]
) -> Healthcheck:
    args = node.args
    if not args:
        raise _Syntax("HEALTHCHECK requires at least one argument")
    kind = args[0].upper()
    if kind == "NONE":
        if len(args) > 1:
            raise _Syntax("HEALTHCHECK NONE takes no arguments")
        test: tuple[str, ...] = ("NONE",)
    elif kind == "CMD":
        if len(args) == 1:
            raise _Syntax("Missing command after HEALTHCHECK CMD")
        test = ("CMD", *args[1:]) if node.json else ("CMD-SHELL", args[1])
    else:
        raise _Syntax(f'Unknown type "{args[0]}" in HEALTHCHECK (try CMD)')
    durations: dict[str, int | None] = {}
    for flag in ("interval", "timeout", "start-period", "start-interval"):
        text = _str_flag(flags, flag)
        if text is None:
            durations[flag] = None
            continue
        try:
            value = parse_duration(text)
        except FlagError as error:
            raise _Syntax(str(error)) from None
        if 0 < value < 1_000_000 or value < 0:
            raise _Syntax(f"{flag.capitalize().replace('-', ' ')} {text!r} cannot be less than 1ms")
        durations[flag] = value
    retries_text = _str_flag(flags, "retries")
    retries = None
    if retries_text is not None:
        try:
            retries = int(retries_text)
        except ValueError:
            raise _Syntax(f"--retries: invalid value {retries_text!r}") from None
        if retries < 0:
            raise _Syntax("--retries cannot be negative")
    return Healthcheck(
        **base,
        test=test,
        interval=durations["interval"],
        timeout=durations["timeout"],
        start_period=durations["start-period"],
        start_interval=durations["start-interval"],
        retries=retries,
    )


def _copy(node: Instruction, base: dict[str, Any], flags: dict[str, str | list[str] | bool]) -> Copy:
    keyword = node.command.upper()
    if len(node.args) < 2:
        if len(node.args) == 1:
            raise _Syntax(
                f"{keyword} requires at least two arguments, but only one was provided. Destination could not be determined."
            )
        raise _Syntax(f"{keyword} requires at least two arguments")
    common: dict[str, Any] = {
        "sources": node.args[:-1],
        "dest": node.args[-1],
        "chown": _str_flag(flags, "chown"),
        "chmod": _str_flag(flags, "chmod"),
        "link": bool(_bool_flag(flags, "link")),
        "exclude": _list_flag(flags, "exclude"),
    }
    if node.command == "copy":
        return Copy(
            **base,
            **common,
            from_=_str_flag(flags, "from"),
            parents=bool(_bool_flag(flags, "parents")),
        )
    return Add(
        **base,
        **common,
        checksum=_str_flag(flags, "checksum"),
        keep_git_dir=bool(_bool_flag(flags, "keep-git-dir")),
        unpack=_bool_flag(flags, "unpack"),
    )


def _instruction(
    text: str, start: int, end: int, escape: str, heredocs: tuple[Heredoc, ...], *, typed: bool = True
) -> Instruction:
    """The typed instruction of a logical line (ONBUILD wraps its typed trigger); ``typed=False``:
    docker's AST node only (no instruction's own checks)."""
    command, rest = words.split_command(text)
    if command != "onbuild":
        node = _with_heredocs(_node(text, start, end, escape), heredocs)
        return _typed(node) if typed else node
    onbuild_flags, rest = words.extract_flags(rest)
    if not typed:
        trigger_node = (
            _node(rest, start, end, escape)
            if rest.strip()
            else Instruction(command="", line=start, end_line=end, original="")
        )
        return Onbuild(
            command="onbuild",
            line=start,
            end_line=end,
            original=text,
            flags=tuple(onbuild_flags),
            args=(trigger_node.original,),
            expression=_ONBUILD_PREFIX.sub("", text),
            trigger=trigger_node,
        )
    if rest.strip() == "":
        raise _Syntax("ONBUILD requires at least one argument")
    trigger_word = words.split_command(rest)[0].upper()
    if trigger_word == "ONBUILD":
        raise _Syntax("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger_word in ("FROM", "MAINTAINER"):
        raise _Syntax(f"{trigger_word} isn't allowed as an ONBUILD trigger")
    node = _node(rest, start, end, escape)
    trigger = _typed(node)
    return Onbuild(
        command="onbuild",
        line=start,
        end_line=end,
        original=text,
        flags=tuple(onbuild_flags),
        args=(node.original,),
        expression=_ONBUILD_PREFIX.sub("", text),
        trigger=trigger,
    )


def _with_heredocs(node: Instruction, heredocs: tuple[Heredoc, ...]) -> Instruction:
    if not heredocs:
        return node
    return Instruction(
        command=node.command,
        line=node.line,
        end_line=node.end_line,
        original=node.original,
        flags=node.flags,
        args=node.args,
        json=node.json,
        heredocs=heredocs,
    )


def _opens_heredocs(text: str) -> bool:
    command, rest = words.split_command(text)
    if command not in _HEREDOC_COMMANDS or "<<" not in text:
        return False
    _, rest = words.extract_flags(rest)
    try:
        return words.parse_json_array(rest) is None
    except words.JsonArrayError:
        return False


def _read_instructions(text: str, name: str, *, typed: bool = True) -> tuple[LineReader, list[Instruction]]:
    reader = LineReader(text, name)
    found: list[Instruction] = []
    while (logical := reader.next_line()) is not None:
        escape = reader.directives.escape
        heredocs: list[Heredoc] = []
        if _opens_heredocs(logical.text):
            for opener in openers_in(logical.text):
                body = reader.heredoc(opener)
                if body is None:
                    raise InvalidArgument(f"{name}:{logical.start}: unterminated heredoc {opener.name!r}")
                heredocs.append(body)
        end = reader.line_number
        try:
            found.append(_instruction(logical.text, logical.start, end, escape, tuple(heredocs), typed=typed))
        except _Syntax as error:
            raise InvalidArgument(f"{name}:{logical.start}: {error}") from None
    return reader, found


def parse_ast(text: str, *, name: str = "Dockerfile") -> tuple[Instruction, ...]:
    """Docker's AST only (BuildKit's ``parser.Parse``): every instruction as an untyped ``Instruction``
    (ONBUILD an ``Onbuild`` around its untyped trigger), without the instructions' own checks
    (argument counts, flags, stage order): what the PyPI ``dockerfile`` package gives."""
    _, found = _read_instructions(text, name, typed=False)
    if not found:
        raise InvalidArgument(f"{name}: file with no instructions")
    return tuple(found)


def parse(text: str, *, name: str = "Dockerfile") -> Dockerfile:
    """Parse a Dockerfile's text; see the package docstring for the shape. Raises ``InvalidArgument``."""
    reader, found = _read_instructions(text, name)
    if not found:
        raise InvalidArgument(f"{name}: file with no instructions")
    global_args: list[Arg] = []
    stages: list[Stage] = []
    current: From | None = None
    body: list[Instruction] = []
    seen_names: set[str] = set()
    for instruction in found:
        if isinstance(instruction, From):
            if current is not None:
                stages.append(Stage(index=len(stages), base=current, instructions=tuple(body)))
            if instruction.stage_name is not None:
                if instruction.stage_name in seen_names:
                    raise InvalidArgument(
                        f"{name}:{instruction.line}: duplicate stage name {instruction.stage_name!r}"
                    )
                seen_names.add(instruction.stage_name)
            current, body = instruction, []
        elif current is None:
            if not isinstance(instruction, Arg):
                raise InvalidArgument(
                    f"{name}:{instruction.line}: {instruction.command.upper()} before the first FROM: "
                    "no build stage in current context (only ARG may come before FROM)"
                )
            global_args.append(instruction)
        else:
            body.append(instruction)
    if current is None:
        raise InvalidArgument(f"{name}: no FROM instruction: a Dockerfile needs at least one build stage")
    stages.append(Stage(index=len(stages), base=current, instructions=tuple(body)))
    return Dockerfile(
        name=name,
        directives=reader.directives,
        global_args=tuple(global_args),
        stages=tuple(stages),
        instructions=tuple(found),
    )
