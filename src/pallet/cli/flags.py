"""Command-line flags as docker's CLI reads them (spf13/pflag), behind the part of argparse's API pallet uses.

STYLE.md names ``argparse`` for the CLI; this module replaces it because of
what it costs on every command: importing argparse takes ~16 ms (it pulls
``re`` and ``gettext``) against a ~13 ms bare interpreter start, and
``pallet run`` must become twice as fast. It also reads docker's syntax, which
argparse does not. It imports nothing but builtins at module level.

A command module configures a :class:`FlagParser` as it would an
``argparse.ArgumentParser`` (``add_argument``, ``set_defaults``), and
``parse_args`` returns a :class:`Namespace`. The syntax is pflag's:

- ``--name value``, ``--name=value``, ``-n value``, ``-nvalue``, ``-n=value``;
  a flag that takes a value takes the next argument whatever it looks like, so
  ``--cpu-shares -1`` works;
- booleans (``store_true``, ``store_const``, options with ``nargs="?"``) take a
  value only after ``=``: ``--rm=false``, ``-d=1``; combined short booleans
  ``-dit``, and a group whose last letter takes a value: ``-ituroot``;
- ``--`` ends the flags; ``-`` alone is a positional (stdin);
- flags may follow positionals (``pallet rm abc -f``), except in a command with
  a ``REMAINDER`` positional (run, create, exec, top): there the first
  positional ends the flags, as docker's ``SetInterspersed(false)``, so
  ``pallet run busybox ls -l`` gives ``-l`` to ``ls``.

Every mistake is reported through :meth:`FlagParser.error` (a ``UsageError``
naming the command) in docker's words: ``unknown flag: --foo``, ``unknown
shorthand flag: 'z' in -z``, ``flag needs an argument: --name``, ``invalid
argument "x" for "--cpus" flag: ...``, ``"pallet rm" requires at least 1
argument``. ``-h``/``--help`` prints docker-style help to the parser's ``out``
stream and raises :class:`HelpRequested`, which the caller turns into exit 0.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import Any, NoReturn, TextIO

    from _typeshed import SupportsWrite

__all__ = ["REMAINDER", "SUPPRESS", "FlagParser", "HelpRequested", "Namespace", "parse_bool"]

#: ``nargs`` of a last positional that takes every argument after the ones before it, flags included
REMAINDER = "..."
#: ``help`` of an option that the help output hides
SUPPRESS = "==SUPPRESS=="

_UNLIMITED = 1 << 30


class HelpRequested(Exception):
    """``-h``/``--help`` was given and the help is printed: the command ends with exit code 0."""


class Namespace:
    """The parsed values, one attribute per ``dest`` (the shape of ``argparse.Namespace``)."""

    def __init__(self, **kwargs: object) -> None:
        self.__dict__.update(kwargs)

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in sorted(self.__dict__.items()))
        return f"Namespace({fields})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Namespace) and vars(self) == vars(other)

    __hash__ = None  # type: ignore[assignment]

    def __contains__(self, key: str) -> bool:
        return key in self.__dict__

    if TYPE_CHECKING:
        # values are whatever the command configured: typed by the handler that reads them
        def __getattr__(self, name: str) -> Any: ...


def parse_bool(text: str) -> bool:
    """A boolean flag's value (``--rm=false``): ``true``/``1`` or ``false``/``0``, any case, as docker reads it."""
    lowered = text.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ValueError(text)


class _Argument:
    """One ``add_argument``: an option (``names`` start with ``-``) or a positional."""

    __slots__ = (
        "action",
        "choices",
        "const",
        "default",
        "dest",
        "help",
        "longs",
        "metavar",
        "nargs",
        "required",
        "short",
        "type",
    )

    def __init__(
        self,
        *,
        longs: list[str],
        short: str,
        dest: str,
        action: str,
        nargs: str | None,
        default: object,
        type: Callable[[str], object] | None,
        choices: tuple[object, ...] | None,
        const: object,
        metavar: str | None,
        help: str | None,
        required: bool,
    ) -> None:
        self.longs = longs
        self.short = short
        self.dest = dest
        self.action = action
        self.nargs = nargs
        self.default = default
        self.type = type
        self.choices = choices
        self.const = const
        self.metavar = metavar
        self.help = help
        self.required = required

    @property
    def flag_name(self) -> str:
        """The flag as docker names it in errors: ``-m, --memory`` or ``--cpus``."""
        if self.short and self.longs:
            return f"-{self.short}, --{self.longs[0]}"
        return f"--{self.longs[0]}" if self.longs else f"-{self.short}"

    @property
    def takes_no_value(self) -> bool:
        """A value only after ``=`` (pflag's ``NoOptDefVal``): booleans, constants, ``nargs="?"``."""
        return self.action in ("store_true", "store_const", "help") or self.nargs == "?"

    @property
    def bounds(self) -> tuple[int, int]:
        """How many arguments a positional takes, at least and at most."""
        return {None: (1, 1), "?": (0, 1), "*": (0, _UNLIMITED), "+": (1, _UNLIMITED)}.get(
            self.nargs, (0, _UNLIMITED)
        )

    def display(self) -> str:
        """A positional in the usage line: ``IMAGE``, ``[COMMAND] [ARG...]``, ``CONTAINER [CONTAINER...]``."""
        name = self.metavar
        if name is None:
            name = self.dest.upper()
            # `containers` nargs="+" reads as docker's CONTAINER [CONTAINER...]
            if self.nargs in ("+", "*") and name.endswith("S"):
                name = name[:-1]
        if self.nargs == REMAINDER:
            return name if self.metavar is not None else f"[{name}] [ARG...]"
        if self.nargs is None:
            return name
        return {"?": f"[{name}]", "*": f"[{name}...]", "+": f"{name} [{name}...]"}[self.nargs]

    def value_name(self) -> str:
        """The word after the flag in help: docker's ``string``, ``list``, ``int``, ``decimal``."""
        if self.metavar is not None:
            return self.metavar
        if self.takes_no_value:
            return ""
        if self.action == "append":
            return "list"
        if self.type is int:
            return "int"
        return "decimal" if self.type is float else "string"


def _go_reason(convert: Callable[[str], object], value: str, error: Exception) -> str:
    """Why ``convert`` refused ``value``, in the words of Go's strconv where docker's flag would use it."""
    parser = "ParseInt" if convert is int else "ParseFloat" if convert is float else ""
    if convert is parse_bool:
        parser = "ParseBool"
    if parser:
        return f'strconv.{parser}: parsing "{value}": invalid syntax'
    return str(error) or f"invalid value {value!r}"


def _plural(count: int) -> str:
    return f"{count} argument" if count == 1 else f"{count} arguments"


class FlagParser:
    """The flags and positionals of one ``pallet`` command; a drop-in for the argparse calls pallet makes.

    Errors raise ``UsageError(message, command)``; help is written to ``out``
    (standard output when None) and ends in :class:`HelpRequested`.
    """

    def __init__(
        self, command: str, out: TextIO | None = None, *, description: str = "", add_help: bool = True
    ) -> None:
        self.command = command
        self.prog = f"pallet {command}".strip()
        self.out = out
        self.description = description
        self._arguments: list[_Argument] = []
        self._positionals: list[_Argument] = []
        self._longs: dict[str, _Argument] = {}
        self._shorts: dict[str, _Argument] = {}
        self._defaults: dict[str, object] = {}
        if add_help:
            self.add_argument("-h", "--help", action="help", help=SUPPRESS)

    # --- configuration ------------------------------------------------------------------------

    def add_argument(
        self,
        *names: str,
        action: str | None = None,
        nargs: str | None = None,
        default: object = None,
        type: Callable[[str], object] | None = None,
        choices: Iterable[object] | None = None,
        const: object = None,
        dest: str | None = None,
        metavar: str | None = None,
        help: str | None = None,
        required: bool = False,
    ) -> None:
        """Add an option (``"-n", "--name"``) or a positional (``"image"``), with argparse's keywords.

        Options take ``nargs`` None or ``"?"`` (a value only after ``=``);
        positionals take None, ``"?"``, ``"*"``, ``"+"`` or :data:`REMAINDER`
        (last). Misuse is a programming error: ``ValueError``.
        """
        action = action or "store"
        if action not in ("store", "store_true", "store_const", "append", "help"):
            raise ValueError(f"unsupported action {action!r}")
        option = bool(names) and names[0].startswith("-")
        longs = [name[2:] for name in names if name.startswith("--") and len(name) > 2]
        shorts = [name[1:] for name in names if not name.startswith("--") and len(name) == 2]
        if option:
            if len(longs) + len(shorts) != len(names) or len(shorts) > 1:
                raise ValueError(f"bad option names {names!r}: one -x at most, and --long ones")
            if nargs not in (None, "?"):
                raise ValueError(f"an option takes nargs None or '?', not {nargs!r}")
            if action == "store_true" and default is None:
                default = False
            dest = dest or (longs[0] if longs else shorts[0]).replace("-", "_")
        else:
            if len(names) != 1 or action != "store" or dest is not None:
                raise ValueError(f"a positional has one name and stores it: {names!r}")
            if nargs not in (None, "?", "*", "+", REMAINDER):
                raise ValueError(f"unsupported nargs {nargs!r}")
            if self._positionals and self._positionals[-1].nargs == REMAINDER:
                raise ValueError("REMAINDER must be the last positional")
            if nargs in ("*", REMAINDER) and default is None:
                default = []
            dest, required = names[0], nargs in (None, "+")
        argument = _Argument(
            longs=longs,
            short=shorts[0] if shorts else "",
            dest=dest,
            action=action,
            nargs=nargs,
            default=default,
            type=type,
            choices=tuple(choices) if choices is not None else None,
            const=True if action == "store_true" else const,
            metavar=metavar,
            help=help,
            required=required,
        )
        self._arguments.append(argument)
        if not option:
            self._positionals.append(argument)
        for long in longs:
            if long in self._longs:
                raise ValueError(f"--{long} is defined twice")
            self._longs[long] = argument
        if argument.short:
            if argument.short in self._shorts:
                raise ValueError(f"-{argument.short} is defined twice")
            self._shorts[argument.short] = argument

    def set_defaults(self, **defaults: object) -> None:
        """Attributes every parse result has unless a flag sets them (``run=handler``)."""
        self._defaults.update(defaults)
        for argument in self._arguments:
            if argument.dest in defaults:
                argument.default = defaults[argument.dest]

    # --- parsing --------------------------------------------------------------------------------

    def parse_args(self, args: Sequence[str] | None = None) -> Namespace:
        """Parse ``args`` (default ``sys.argv[1:]``); a mistake calls :meth:`error`."""
        argv = list(sys.argv[1:] if args is None else args)
        values: dict[str, object] = {}
        for argument in self._arguments:
            if argument.action != "help":
                values[argument.dest] = self._initial(argument)
        for key, value in self._defaults.items():
            values.setdefault(key, value)
        given: set[str] = set()
        positionals: list[str] = []
        # with a REMAINDER positional, the first positional ends the flags (docker's run, exec)
        interspersed = not (self._positionals and self._positionals[-1].nargs == REMAINDER)
        index = 0
        while index < len(argv):
            arg = argv[index]
            index += 1
            if len(arg) < 2 or arg[0] != "-":
                positionals.append(arg)
                if not interspersed:
                    positionals += argv[index:]
                    break
            elif arg == "--":
                positionals += argv[index:]
                break
            elif arg[1] == "-":
                index = self._long(arg, argv, index, values, given)
            else:
                index = self._shorts_group(arg, argv, index, values, given)
        missing = [a.longs[0] for a in self._arguments if a.required and a.longs and a.dest not in given]
        if missing:
            self.error("required flag(s) " + ", ".join(f'"{name}"' for name in missing) + " not set")
        self._assign(positionals, values)
        return Namespace(**values)

    @staticmethod
    def _initial(argument: _Argument) -> object:
        default = argument.default
        if isinstance(default, list):
            return list(default)  # appending never changes the configured default
        if isinstance(default, str) and argument.type is not None and argument.action == "store":
            return argument.type(default)
        return default

    def _long(self, arg: str, argv: list[str], index: int, values: dict[str, object], given: set[str]) -> int:
        body = arg[2:]
        if body[0] in "-=":
            self.error(f"bad flag syntax: {arg}")
        name, eq, value = body.partition("=")
        argument = self._longs.get(name)
        if argument is None:
            self.error(f"unknown flag: --{name}")
        if eq:
            self._set(argument, value, values, given)
        elif argument.takes_no_value:
            self._set(argument, None, values, given)
        elif index < len(argv):
            self._set(argument, argv[index], values, given)
            index += 1
        else:
            self.error(f"flag needs an argument: {arg}")
        return index

    def _shorts_group(
        self, arg: str, argv: list[str], index: int, values: dict[str, object], given: set[str]
    ) -> int:
        """``-dit``, ``-uroot``, ``-u=root``, ``-u root``: pflag's reading, letter by letter."""
        shorts = arg[1:]
        while shorts:
            letter = shorts[0]
            argument = self._shorts.get(letter)
            if argument is None:
                self.error(f"unknown shorthand flag: '{letter}' in -{shorts}")
            if len(shorts) > 2 and shorts[1] == "=":
                value: str | None = shorts[2:]
                shorts = ""
            elif argument.takes_no_value:
                value = None
                shorts = shorts[1:]
            elif len(shorts) > 1:
                value = shorts[1:]
                shorts = ""
            elif index < len(argv):
                value = argv[index]
                index += 1
                shorts = ""
            else:
                self.error(f"flag needs an argument: '{letter}' in -{shorts}")
            self._set(argument, value, values, given)
        return index

    def _set(
        self, argument: _Argument, value: str | None, values: dict[str, object], given: set[str]
    ) -> None:
        """Apply one flag; ``value`` None when the flag came without one (a boolean)."""
        given.add(argument.dest)
        if argument.action == "help":
            if value is None or self._convert(argument, value, parse_bool):
                self.print_help()
                raise HelpRequested(self.prog)
            return
        if argument.action in ("store_true", "store_const"):
            if value is None or self._convert(argument, value, parse_bool):
                values[argument.dest] = argument.const
            else:
                values[argument.dest] = self._initial(argument) if argument.action == "store_const" else False
            return
        if value is None:  # nargs="?" without `=`
            values[argument.dest] = argument.const
            return
        converted = self._convert(argument, value, argument.type)
        if argument.action == "append":
            items = values.get(argument.dest)
            if not isinstance(items, list):
                items = values[argument.dest] = []
            items.append(converted)
        else:
            values[argument.dest] = converted

    def _convert(self, argument: _Argument, value: str, convert: Callable[[str], object] | None) -> Any:
        what = (
            f'"{argument.flag_name}" flag' if argument.longs or argument.short else f'"{argument.display()}"'
        )
        result: object = value
        if convert is not None:
            if convert is int and not _is_decimal(value):
                self.error(f'invalid argument "{value}" for {what}: {_go_reason(int, value, ValueError())}')
            try:
                result = convert(value)
            except (ValueError, TypeError, ArithmeticError) as error:
                self.error(f'invalid argument "{value}" for {what}: {_go_reason(convert, value, error)}')
        if argument.choices is not None and convert is not parse_bool and result not in argument.choices:
            allowed = ", ".join(str(choice) for choice in argument.choices)
            self.error(f'invalid argument "{value}" for {what}: must be one of {allowed}')
        return result

    def _assign(self, positionals: list[str], values: dict[str, object]) -> None:
        """Give each positional its share, left to right, greedy; a wrong count is docker's error."""
        bounds = [argument.bounds for argument in self._positionals]
        least = sum(low for low, _ in bounds)
        most = min(_UNLIMITED, sum(high for _, high in bounds))
        if not least <= len(positionals) <= most:
            self.error(self._count_message(least, most))
        spare = len(positionals) - least
        start = 0
        for argument, (low, high) in zip(self._positionals, bounds, strict=True):
            take = low + min(high - low, spare)
            spare -= take - low
            chunk = positionals[start : start + take]
            start += take
            if argument.nargs in (None, "?"):
                if chunk:
                    values[argument.dest] = self._convert(argument, chunk[0], argument.type)
            else:
                values[argument.dest] = [self._convert(argument, item, argument.type) for item in chunk]

    def _count_message(self, least: int, most: int) -> str:
        """Docker's words (cli/required.go) for a wrong number of positionals."""
        name = f'"{self.prog}"'
        if most == 0:
            return f"{name} accepts no arguments"
        if least == most:
            return f"{name} requires exactly {_plural(least)}"
        if most >= _UNLIMITED:
            return f"{name} requires at least {_plural(least)}"
        if least == 0:
            return f"{name} requires at most {_plural(most)}"
        return f"{name} requires at least {least} and at most {_plural(most)}"

    # --- help and errors ------------------------------------------------------------------------

    def format_help(self) -> str:
        """Docker's help: the usage line, the summary, the options aligned; SUPPRESS hides one."""
        options = [a for a in self._arguments if a.nargs != REMAINDER and (a.longs or a.short)]
        options = [a for a in options if a.help != SUPPRESS]
        usage = " ".join(
            ["Usage: ", self.prog]
            + (["[OPTIONS]"] if options else [])
            + [p.display() for p in self._positionals]
        )
        lines = [usage, ""]
        if self.description:
            lines += [self.description, ""]
        described = [p for p in self._positionals if p.help and p.help != SUPPRESS]
        if described:
            lines.append("Arguments:")
            lines += _aligned([(f"  {p.display()}", p.help or "") for p in described])
            lines.append("")
        if options:
            lines.append("Options:")
            rows = []
            for option in sorted(options, key=lambda a: (a.longs or [a.short])[0]):
                flag = f"  -{option.short}, --{option.longs[0]}" if option.short and option.longs else ""
                flag = flag or (f"      --{option.longs[0]}" if option.longs else f"  -{option.short}")
                word = option.value_name()
                rows.append((f"{flag} {word}" if word else flag, option.help or ""))
            lines += _aligned(rows)
            lines.append("")
        return "\n".join(lines)

    def print_help(self, file: SupportsWrite[str] | None = None) -> None:
        """Write :meth:`format_help` to ``file``, else the parser's ``out``, else standard output."""
        stream: SupportsWrite[str] = file or self.out or sys.stdout
        stream.write(self.format_help())

    def error(self, message: str) -> NoReturn:
        """Raise ``UsageError(message, command)``: one line on stderr, exit code 125."""
        from pallet.cli.exits import UsageError

        raise UsageError(message, self.command)


def _is_decimal(text: str) -> bool:
    """Go's ``ParseInt(text, 10, 64)`` syntax: an optional sign and ASCII digits, nothing else."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    return digits.isascii() and digits.isdigit()


def _aligned(rows: list[tuple[str, str]]) -> list[str]:
    """Two columns, the second starting three spaces after the longest first (pflag's layout)."""
    width = max(len(left) for left, _ in rows)
    return [f"{left:<{width}}   {right}".rstrip() for left, right in rows]
