"""The Dockerfile parser: directives, continuations, forms, heredocs, flags, stages and syntax errors."""

from __future__ import annotations

import pytest

from pallet.build.dockerfile import (
    Add,
    Arg,
    Cmd,
    Copy,
    Env,
    From,
    Healthcheck,
    Label,
    Onbuild,
    Run,
    Shell,
    Volume,
    parse,
)
from pallet.errors import InvalidArgument


def only(text: str) -> object:
    parsed = parse("FROM scratch\n" + text)
    assert len(parsed.instructions) == 2
    return parsed.instructions[1]


def test_keywords_are_case_insensitive_and_reported_lowercase() -> None:
    parsed = parse("from busybox\nRuN echo hi\n")
    assert [i.command for i in parsed.instructions] == ["from", "run"]
    assert parsed.instructions[1].line == 2


def test_directives_are_read_only_at_the_top() -> None:
    parsed = parse("# syntax=docker/dockerfile:1\n# escape=`\n# check=skip=all\nFROM scratch\n")
    assert parsed.directives.syntax == "docker/dockerfile:1"
    assert parsed.directives.escape == "`"
    assert parsed.directives.check == "skip=all"
    late = parse("# a comment\n# escape=`\nFROM scratch\n")
    assert late.directives.escape == "\\"


def test_a_directive_twice_is_an_error_naming_the_line() -> None:
    with pytest.raises(InvalidArgument, match=r"^Dockerfile:2: only one escape parser directive"):
        parse("# escape=`\n# escape=\\\nFROM scratch\n")


def test_a_bad_escape_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="invalid escape token"):
        parse("# escape=x\nFROM scratch\n")


def test_continuations_skip_comments_and_empty_lines_and_keep_line_numbers() -> None:
    parsed = parse("FROM scratch\nRUN echo a \\\n# note\n\n   && echo b\nCMD x\n")
    run = parsed.instructions[1]
    assert isinstance(run, Run)
    assert run.original == "RUN echo a    && echo b"
    assert (run.line, run.end_line) == (2, 5)
    assert parsed.instructions[2].line == 6


def test_the_escape_directive_changes_the_continuation_character() -> None:
    parsed = parse("# escape=`\nFROM scratch\nRUN dir c:\\ `\n  && echo b\n")
    assert parsed.instructions[1].args == ("dir c:\\   && echo b",)


def test_exec_and_shell_forms() -> None:
    cmd = only('CMD ["echo", "a b"]')
    assert isinstance(cmd, Cmd)
    assert cmd.json
    assert cmd.command_line == ("echo", "a b")
    shell = only("CMD echo  $HOME")
    assert not shell.json
    assert shell.args == ("echo  $HOME",)
    broken = only('CMD ["echo", ')  # not JSON: the shell form, as docker reads it
    assert broken.args == ('["echo",',)  # type: ignore[attr-defined]


def test_a_json_array_of_non_strings_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="arrays must be comprised of strings only"):
        parse('FROM scratch\nCMD ["a", 1]\n')


def test_env_and_label_pairs_keep_quotes_until_expansion() -> None:
    env = only('ENV A=1 B="two words" C=')
    assert isinstance(env, Env)
    assert env.args == ("A", "1", "=", "B", '"two words"', "=", "C", "", "=")
    assert env.pairs == (("A", "1"), ("B", '"two words"'), ("C", ""))
    legacy = only("ENV NAME the rest  of it")
    assert legacy.args == ("NAME", "the rest  of it", "")  # type: ignore[attr-defined]
    label = only('LABEL "org.x"="y z"')
    assert isinstance(label, Label)
    assert label.pairs == (('"org.x"', '"y z"'),)


def test_env_without_equals_in_a_later_word_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match=r"Dockerfile:2: Syntax error - can't find = in 'B'"):
        parse("FROM scratch\nENV A=1 B\n")


def test_arg_before_from_is_global_and_stages_are_split() -> None:
    parsed = parse("ARG V=1\nARG W\nFROM busybox:${V} AS Base\nARG V\nRUN x\nFROM base\nCOPY --from=0 a b\n")
    assert [a.decls[0].name for a in parsed.global_args] == ["V", "W"]
    assert parsed.global_args[0].decls[0].default == "1"
    assert parsed.global_args[1].decls[0].default is None
    assert [s.name for s in parsed.stages] == ["base", None]
    assert isinstance(parsed.stages[0].instructions[0], Arg)
    assert parsed.stage("BASE") is parsed.stages[0]
    assert parsed.stage("1") is parsed.stages[1]
    assert parsed.stage("nope") is None


def test_from_forms_and_errors() -> None:
    base = parse("FROM --platform=$BUILDPLATFORM img AS b\n").stages[0].base
    assert isinstance(base, From)
    assert (base.image, base.stage_name, base.platform) == ("img", "b", "$BUILDPLATFORM")
    with pytest.raises(InvalidArgument, match="FROM requires either one or three arguments"):
        parse("FROM a b\n")
    with pytest.raises(InvalidArgument, match="invalid name for build stage"):
        parse("FROM a AS 1x\n")
    with pytest.raises(InvalidArgument, match="duplicate stage name 'x'"):
        parse("FROM a AS x\nFROM b AS X\n")


def test_instructions_before_from_other_than_arg_are_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"Dockerfile:1: RUN before the first FROM"):
        parse("RUN x\nFROM a\n")


def test_an_empty_file_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match="file with no instructions"):
        parse("# only a comment\n\n", name="x/Dockerfile")


def test_unknown_instruction_names_line_and_keyword() -> None:
    with pytest.raises(InvalidArgument, match=r"^Dockerfile:3: unknown instruction: FOO"):
        parse("FROM a\n\nFOO bar\n")


def test_copy_flags_are_typed() -> None:
    copy = only(
        "COPY --from=build --chown=1:2 --chmod=0755 --link --parents --exclude=*.md --exclude=x a b /d/"
    )
    assert isinstance(copy, Copy)
    assert copy.flags[0] == "--from=build"
    assert (copy.from_, copy.chown, copy.chmod, copy.link, copy.parents) == (
        "build",
        "1:2",
        "0755",
        True,
        True,
    )
    assert copy.exclude == ("*.md", "x")
    assert (copy.sources, copy.dest) == (("a", "b"), "/d/")
    add = only('ADD --checksum=sha256:abc --keep-git-dir=false ["a b", "/c"]')
    assert isinstance(add, Add)
    assert add.json
    assert add.sources == ("a b",)
    assert add.checksum == "sha256:abc"
    assert not add.keep_git_dir


def test_unknown_and_malformed_flags_are_errors() -> None:
    with pytest.raises(InvalidArgument, match="unknown flag: parents"):
        parse("FROM a\nADD --parents x y\n")
    with pytest.raises(InvalidArgument, match="missing a value on flag: from"):
        parse("FROM a\nCOPY --from x y\n")
    with pytest.raises(InvalidArgument, match="duplicate flag specified: chown"):
        parse("FROM a\nCOPY --chown=1 --chown=2 x y\n")
    with pytest.raises(InvalidArgument, match="expecting boolean value for flag link"):
        parse("FROM a\nCOPY --link=maybe x y\n")


def test_copy_needs_a_destination() -> None:
    with pytest.raises(InvalidArgument, match="COPY requires at least two arguments, but only one"):
        parse("FROM a\nCOPY x\n")


def test_run_mounts_network_and_security() -> None:
    run = only(
        "RUN --mount=type=cache,target=/root/.cache,id=pip,sharing=locked "
        "--mount=type=secret,id=tok,required --mount=target=/src,from=build,ro --network=none make"
    )
    assert isinstance(run, Run)
    cache, secret, bind = run.mounts
    assert (cache.type, cache.target, cache.id, cache.sharing) == ("cache", "/root/.cache", "pip", "locked")
    assert (secret.type, secret.id, secret.required) == ("secret", "tok", True)
    assert (bind.type, bind.target, bind.from_, bind.readonly) == ("bind", "/src", "build", True)
    assert run.network == "none"
    assert run.command_line == ("make",)


def test_run_mount_errors() -> None:
    with pytest.raises(InvalidArgument, match="mount target must be specified"):
        parse("FROM a\nRUN --mount=type=cache x\n")
    with pytest.raises(InvalidArgument, match="unsupported network mode 'bridge'"):
        parse("FROM a\nRUN --network=bridge x\n")


def test_heredocs_several_on_a_line_chomp_and_quoted_names() -> None:
    text = "FROM a\nRUN <<EOF cat - && <<-'END' sh\nhello $X\nEOF\n\techo hi\n\tEND\nCMD x\n"
    parsed = parse(text)
    run = parsed.instructions[1]
    first, second = run.heredocs
    assert (first.name, first.content, first.expand, first.chomp) == ("EOF", "hello $X\n", True, False)
    assert (second.name, second.content, second.expand, second.chomp) == ("END", "\techo hi\n", False, True)
    assert second.data == "echo hi\n"
    assert (run.line, run.end_line) == (2, 6)
    assert parsed.instructions[2].line == 7


def test_copy_heredoc_and_json_form_never_opens_one() -> None:
    parsed = parse('FROM a\nCOPY <<"EOF" /etc/x\nline $Y\nEOF\nRUN ["echo", "<<EOF"]\n')
    copy = parsed.instructions[1]
    assert isinstance(copy, Copy)
    assert copy.sources == ('<<"EOF"',)
    assert copy.heredocs[0].name == "EOF"
    assert not copy.heredocs[0].expand
    assert parsed.instructions[2].heredocs == ()


def test_an_unterminated_heredoc_is_an_error() -> None:
    with pytest.raises(InvalidArgument, match=r"Dockerfile:2: unterminated heredoc 'EOF'"):
        parse("FROM a\nRUN <<EOF\necho\n")


def test_healthcheck_forms_and_options() -> None:
    check = only('HEALTHCHECK --interval=1m30s --timeout=500ms --retries=3 CMD ["curl", "-f", "x"]')
    assert isinstance(check, Healthcheck)
    assert check.test == ("CMD", "curl", "-f", "x")
    assert (check.interval, check.timeout, check.retries) == (90 * 10**9, 500 * 10**6, 3)
    shell = only("HEALTHCHECK CMD curl -f x || exit 1")
    assert shell.test == ("CMD-SHELL", "curl -f x || exit 1")  # type: ignore[attr-defined]
    assert only("HEALTHCHECK NONE").test == ("NONE",)  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument, match='Unknown type "RUN" in HEALTHCHECK'):
        parse("FROM a\nHEALTHCHECK RUN x\n")


def test_onbuild_wraps_a_parsed_trigger() -> None:
    onbuild = only("ONBUILD COPY --chown=1 . /app")
    assert isinstance(onbuild, Onbuild)
    assert onbuild.expression == "COPY --chown=1 . /app"
    assert isinstance(onbuild.trigger, Copy)
    assert onbuild.trigger.chown == "1"
    with pytest.raises(InvalidArgument, match="Chaining ONBUILD"):
        parse("FROM a\nONBUILD ONBUILD RUN x\n")
    with pytest.raises(InvalidArgument, match="FROM isn't allowed as an ONBUILD trigger"):
        parse("FROM a\nONBUILD FROM b\n")


def test_shell_must_be_json_and_volume_takes_both_forms() -> None:
    assert isinstance(only('SHELL ["/bin/sh", "-ec"]'), Shell)
    with pytest.raises(InvalidArgument, match="SHELL requires the arguments to be in JSON form"):
        parse("FROM a\nSHELL /bin/sh -c\n")
    volume = only("VOLUME /a /b")
    assert isinstance(volume, Volume)
    assert volume.paths == ("/a", "/b")
    assert only('VOLUME ["/c"]').paths == ("/c",)  # type: ignore[attr-defined]


def test_one_argument_instructions() -> None:
    assert only("WORKDIR /a b").args == ("/a b",)  # type: ignore[attr-defined]
    assert only("USER app:app").user == "app:app"  # type: ignore[attr-defined]
    assert only("STOPSIGNAL SIGTERM").signal == "SIGTERM"  # type: ignore[attr-defined]
    assert only("MAINTAINER Jane <j@x>").name == "Jane <j@x>"  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument, match="WORKDIR requires exactly one argument"):
        parse("FROM a\nWORKDIR\n")


def test_bom_and_crlf_are_tolerated() -> None:
    parsed = parse("\ufeffFROM a\r\nRUN x \\\r\n  y\r\n")
    assert parsed.instructions[1].args == ("x   y",)


def test_error_names_the_given_file_name() -> None:
    with pytest.raises(InvalidArgument, match=r"^app\.Dockerfile:2: "):
        parse("FROM a\nEXPOSE\n", name="app.Dockerfile")


def test_parse_ast_stops_before_the_instructions_own_checks() -> None:
    from pallet.build.dockerfile import parse_ast

    nodes = parse_ast("FROM a\nEXPOSE\nONBUILD RUN x\nRUN \\\n# c\n")
    assert [n.command for n in nodes] == ["from", "expose", "onbuild", "run"]
    assert nodes[3].args == ()
    assert nodes[2].trigger.command == "run"  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument, match="RUN requires at least one argument"):
        parse("FROM a\nRUN \\\n# c\n")


def test_a_bare_double_dash_ends_the_flags() -> None:
    run = only("RUN --network=none -- echo --not-a-flag")
    assert run.flags == ("--network=none",)  # type: ignore[attr-defined]
    assert run.args == ("echo --not-a-flag",)  # type: ignore[attr-defined]
