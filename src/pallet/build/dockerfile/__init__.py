"""The Dockerfile parser: the whole grammar of Docker's Dockerfile reference, as BuildKit reads it.

``parse(text, *, name="Dockerfile") -> Dockerfile``. Errors are
``pallet.errors.InvalidArgument`` worded ``NAME:LINE: what is wrong``.

The shape (all frozen dataclasses, in ``instructions.py``)::

    Dockerfile
      name: str                      the name used in errors
      directives: Directives         escape ("\\\\" or "`"), syntax, check (None when absent)
      global_args: tuple[Arg, ...]   the ARGs before the first FROM
      stages: tuple[Stage, ...]      Stage(index, base: From, instructions: tuple[Instruction, ...]);
                                     stage.name is the FROM ... AS name in lowercase, or None
      instructions: tuple[Instruction, ...]   every instruction in file order (FROMs included)
      stage(ref) -> Stage | None     by name or index, as --target / --from name it

    Instruction (every typed class below is one; its common fields are docker's AST node)
      command: str      the keyword in lowercase ("from", "run", "copy", ...)
      line: int         1-based first physical line;  end_line: int  last one (continuations, heredoc bodies)
      original: str     the logical line: continuations joined (escape + newline removed, comment and
                        empty lines inside dropped), leading blanks stripped, heredoc bodies not included
      flags: tuple[str, ...]   the leading "--name=value" words as written, quotes removed ("--from=build")
      args: tuple[str, ...]    docker's values after the flags, per command:
          run cmd entrypoint shell   JSON form: the array's strings (json=True);
                                     shell form: one string, the rest of the line as written
          copy add volume            JSON form: the array; else the words between blanks (quotes kept)
          from expose                the words between blanks ("img", "AS", "name")
          arg                        the words, quotes kept ("A=1", "B")
          env label                  triples name, value, "=" per pair (quotes kept);
                                     the legacy "ENV NAME rest of line" form gives name, rest, ""
          healthcheck                "NONE" | "CMD" then the JSON array's strings (json=True) or one string
          workdir user stopsignal maintainer   one string, the rest of the line
          onbuild                    one string: the trigger's own logical line ("RUN echo hi")
      json: bool        True for the JSON (exec) form
      heredocs: tuple[Heredoc, ...]   RUN/COPY/ADD in shell form: Heredoc(name, content, expand, chomp, fd);
                                     content is the body as written, with newlines; .data strips tabs for <<-

    Typed fields: From(image, stage_name, platform); Run(command_line, mounts: tuple[Mount], network,
    security); Cmd/Entrypoint(command_line); Shell(shell); Env/Label(pairs: ((name, value), ...));
    Arg(decls: (ArgDecl(name, default|None), ...)); Expose(ports); Volume(paths); Workdir(path);
    User(user); StopSignal(signal); Maintainer(name); Healthcheck(test, interval, timeout,
    start_period, start_interval (ns), retries); Onbuild(expression, trigger: Instruction — parsed
    with the same rules, its line numbers the ONBUILD's); Copy(sources, dest, from_, chown, chmod,
    link, parents, exclude); Add(Copy's fields but from_/parents, + checksum, keep_git_dir, unpack).

Values are not expanded: ``expansion.expand_word(text, env, escape)`` does docker's
``$V ${V:-w} ${V:+w} \\$`` substitution at build time with the environment in scope.

``parse_ast(text, *, name=...) -> tuple[Instruction, ...]`` stops at docker's AST (BuildKit's
``parser.Parse``): the same records (ONBUILD an ``Onbuild`` around an untyped trigger), without the
instructions' own checks (argument counts, flag names, ARG-only before FROM) that ``parse`` adds as
BuildKit's ``instructions.Parse`` does. The PyPI ``dockerfile`` package is that AST level: an oracle
test compares ``parse_ast`` with it (``RUN \\`` alone parses there and fails only in ``parse``).

Mapping onto the PyPI ``dockerfile`` package's ``Command(cmd, sub_cmd, json, original, start_line,
end_line, flags, value)``: cmd = command; value = args; json, original, flags, start_line = line,
end_line as named. For ONBUILD: cmd = "onbuild", sub_cmd = trigger.command, and json, flags and
value are the trigger's (value = trigger.args), original = the trigger's original.
"""

from __future__ import annotations

from pallet.build.dockerfile.directives import Directives
from pallet.build.dockerfile.heredocs import Heredoc
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
    Mount,
    Onbuild,
    Run,
    Shell,
    Stage,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from pallet.build.dockerfile.parser import parse, parse_ast

__all__ = [
    "Add",
    "Arg",
    "ArgDecl",
    "Cmd",
    "Copy",
    "Directives",
    "Dockerfile",
    "Entrypoint",
    "Env",
    "Expose",
    "From",
    "Healthcheck",
    "Heredoc",
    "Instruction",
    "Label",
    "Maintainer",
    "Mount",
    "Onbuild",
    "Run",
    "Shell",
    "Stage",
    "StopSignal",
    "User",
    "Volume",
    "Workdir",
    "parse",
    "parse_ast",
]
