"""``pallet.cli.flags``: docker's (pflag's) flag syntax, its error messages, and docker-style help."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pallet.cli.exits import UsageError
from pallet.cli.flags import REMAINDER, SUPPRESS, FlagParser, HelpRequested, Namespace, parse_bool


def run_parser(out: io.StringIO | None = None) -> FlagParser:
    """A parser shaped like ``pallet run``'s: value flags, booleans, appends, IMAGE and a REMAINDER."""
    parser = FlagParser("run", out, description="Create and run a new container from an image")
    parser.add_argument("-d", "--detach", action="store_true", help="run in the background")
    parser.add_argument("-i", "--interactive", action="store_true")
    parser.add_argument("-t", "--tty", action="store_true")
    parser.add_argument("--rm", action="store_true")
    parser.add_argument("--name")
    parser.add_argument("-u", "--user", default="")
    parser.add_argument("-e", "--env", action="append", default=[])
    parser.add_argument("-c", "--cpu-shares")
    parser.add_argument("--memory-swap")
    parser.add_argument("--cpus", type=float)
    parser.add_argument("--network", "--net", dest="network")
    parser.add_argument("--secret", help=SUPPRESS)
    parser.add_argument("image")
    parser.add_argument("command", nargs=REMAINDER)
    parser.set_defaults(run="handler")
    return parser


def rm_parser() -> FlagParser:
    parser = FlagParser("rm")
    parser.add_argument("-f", "--force", action="store_true")
    parser.add_argument("-v", "--volumes", action="store_true")
    parser.add_argument("containers", nargs="+")
    return parser


def usage_error(parser: FlagParser, *args: str) -> str:
    with pytest.raises(UsageError) as caught:
        parser.parse_args(list(args))
    assert caught.value.command == parser.command
    message: str = caught.value.message
    return message.removesuffix(f"; see 'pallet {parser.command} --help'")


# --- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--name", "web", "busybox"],
        ["--name=web", "busybox"],
        ["-u", "root", "--name", "web", "busybox"],
    ],
)
def test_long_flag_value_is_the_next_argument_or_after_equals(args: list[str]) -> None:
    assert run_parser().parse_args(args).name == "web"


@pytest.mark.parametrize(
    "args", [["-u", "root"], ["-uroot"], ["-u=root"], ["--user", "root"], ["--user=root"]]
)
def test_short_flag_value_is_the_next_argument_attached_or_after_equals(args: list[str]) -> None:
    assert run_parser().parse_args([*args, "busybox"]).user == "root"


def test_value_may_contain_equals_signs() -> None:
    assert run_parser().parse_args(["-e", "A=B=C", "--env=D=E", "-eF=G", "busybox"]).env == [
        "A=B=C",
        "D=E",
        "F=G",
    ]


def test_repeated_append_flag_collects_every_value_in_order() -> None:
    ns = run_parser().parse_args(["-e", "A=1", "--env", "B=2", "-eC=3", "--env=D=4", "busybox"])
    assert ns.env == ["A=1", "B=2", "C=3", "D=4"]


def test_append_default_is_not_shared_between_parses() -> None:
    parser = run_parser()
    parser.parse_args(["-e", "A=1", "busybox"])
    assert parser.parse_args(["busybox"]).env == []


def test_defaults_and_set_defaults_fill_the_namespace() -> None:
    ns = run_parser().parse_args(["busybox"])
    assert ns == Namespace(
        detach=False,
        interactive=False,
        tty=False,
        rm=False,
        name=None,
        user="",
        env=[],
        cpu_shares=None,
        memory_swap=None,
        cpus=None,
        network=None,
        secret=None,
        image="busybox",
        command=[],
        run="handler",
    )
    assert "image" in ns
    assert "help" not in ns


def test_alias_long_names_share_a_dest() -> None:
    assert run_parser().parse_args(["--net", "host", "busybox"]).network == "host"
    assert run_parser().parse_args(["--network=none", "busybox"]).network == "none"


@pytest.mark.parametrize(
    ("args", "dest", "value"),
    [
        (["--cpu-shares", "-1"], "cpu_shares", "-1"),
        (["-c", "-1"], "cpu_shares", "-1"),
        (["--memory-swap", "-1"], "memory_swap", "-1"),
        (["--cpus", "-0.5"], "cpus", -0.5),
    ],
)
def test_negative_number_is_the_value_of_a_flag_that_takes_one(
    args: list[str], dest: str, value: object
) -> None:
    assert getattr(run_parser().parse_args([*args, "busybox"]), dest) == value


def test_type_converts_the_value() -> None:
    assert run_parser().parse_args(["--cpus", "1.5", "busybox"]).cpus == 1.5


# --- booleans ------------------------------------------------------------------------------------


@pytest.mark.parametrize("group", ["-it", "-ti", "-dit", "-itd", "-tdi"])
def test_combined_short_booleans_set_each(group: str) -> None:
    ns = run_parser().parse_args([group, "busybox"])
    assert ns.interactive
    assert ns.tty
    assert ns.detach == ("d" in group)


@pytest.mark.parametrize("args", [["-ituroot"], ["-itu", "root"], ["-it", "-u", "root"], ["-itu=root"]])
def test_last_letter_of_a_group_may_take_a_value(args: list[str]) -> None:
    ns = run_parser().parse_args([*args, "busybox"])
    assert (ns.interactive, ns.tty, ns.user) == (True, True, "root")


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--rm", True),
        ("--rm=true", True),
        ("--rm=TRUE", True),
        ("--rm=1", True),
        ("--rm=false", False),
        ("--rm=False", False),
        ("--rm=0", False),
    ],
)
def test_boolean_takes_a_value_only_after_equals(flag: str, value: bool) -> None:
    assert run_parser().parse_args([flag, "busybox"]).rm is value


def test_short_boolean_with_equals_value() -> None:
    assert run_parser().parse_args(["-d=false", "busybox"]).detach is False
    assert run_parser().parse_args(["-d=1", "busybox"]).detach is True


def test_boolean_does_not_take_the_next_argument() -> None:
    ns = run_parser().parse_args(["--rm", "false"])
    assert (ns.rm, ns.image) == (True, "false")


def test_later_boolean_value_wins() -> None:
    assert run_parser().parse_args(["--rm", "--rm=false", "busybox"]).rm is False


def test_bad_boolean_value_is_docker_s_error() -> None:
    assert usage_error(run_parser(), "--rm=maybe", "busybox") == (
        'invalid argument "maybe" for "--rm" flag: strconv.ParseBool: parsing "maybe": invalid syntax'
    )
    assert usage_error(run_parser(), "-d=yes", "busybox") == (
        'invalid argument "yes" for "-d, --detach" flag: strconv.ParseBool: parsing "yes": invalid syntax'
    )


def test_optional_value_flag_takes_const_alone_and_a_value_after_equals() -> None:
    parser = FlagParser("commit")
    parser.add_argument("-p", "--pause", type=parse_bool, nargs="?", const=True, default=True)
    parser.add_argument("container")
    parser.add_argument("repository", nargs="?")
    assert parser.parse_args(["c"]).pause is True
    assert parser.parse_args(["--pause", "c"]).pause is True
    assert parser.parse_args(["--pause=false", "c"]).pause is False
    assert parser.parse_args(["-p=0", "c"]).pause is False
    # like docker: without `=` the next word is not the flag's
    ns = parser.parse_args(["--pause", "c", "repo"])
    assert (ns.pause, ns.container, ns.repository) == (True, "c", "repo")


def test_store_const() -> None:
    parser = FlagParser("x")
    parser.add_argument("--fast", action="store_const", const="speed", default="care")
    assert parser.parse_args([]).fast == "care"
    assert parser.parse_args(["--fast"]).fast == "speed"


# --- positionals, `--`, `-` ---------------------------------------------------------------------


def test_flags_may_follow_positionals() -> None:
    ns = rm_parser().parse_args(["abc", "-f", "def", "--volumes"])
    assert (ns.containers, ns.force, ns.volumes) == (["abc", "def"], True, True)


def test_remainder_gets_every_argument_after_the_image_flags_included() -> None:
    ns = run_parser().parse_args(["-d", "busybox", "ls", "-l", "--rm", "-it", "--", "x"])
    assert (ns.detach, ns.rm, ns.interactive) == (True, False, False)
    assert (ns.image, ns.command) == ("busybox", ["ls", "-l", "--rm", "-it", "--", "x"])


def test_first_positional_ends_the_flags_of_a_remainder_command() -> None:
    ns = run_parser().parse_args(["busybox", "-d"])
    assert (ns.detach, ns.command) == (False, ["-d"])


def test_double_dash_ends_the_flags() -> None:
    ns = rm_parser().parse_args(["-f", "--", "-v", "--weird"])
    assert (ns.force, ns.volumes, ns.containers) == (True, False, ["-v", "--weird"])
    ns = run_parser().parse_args(["--", "busybox", "-l"])
    assert (ns.image, ns.command) == ("busybox", ["-l"])


def test_lone_dash_is_a_positional() -> None:
    parser = FlagParser("import")
    parser.add_argument("file", metavar="file|-")
    parser.add_argument("reference", nargs="?")
    parser.add_argument("-m", "--message")
    ns = parser.parse_args(["-", "-m", "hi"])
    assert (ns.file, ns.reference, ns.message) == ("-", None, "hi")


def test_optional_and_star_positionals() -> None:
    parser = FlagParser("x")
    parser.add_argument("first")
    parser.add_argument("second", nargs="?", default="dflt")
    parser.add_argument("rest", nargs="*")
    assert parser.parse_args(["a"]) == Namespace(first="a", second="dflt", rest=[])
    assert parser.parse_args(["a", "b", "c", "d"]) == Namespace(first="a", second="b", rest=["c", "d"])


# --- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--foo", "busybox"], "unknown flag: --foo"),
        (["--foo=1", "busybox"], "unknown flag: --foo"),
        (["-z", "busybox"], "unknown shorthand flag: 'z' in -z"),
        (["-itz", "busybox"], "unknown shorthand flag: 'z' in -z"),
        (["-zit", "busybox"], "unknown shorthand flag: 'z' in -zit"),
        (["busybox", "--name"], None),  # after the image: the command's
        (["--name"], "flag needs an argument: --name"),
        (["-u"], "flag needs an argument: 'u' in -u"),
        (["-itu"], "flag needs an argument: 'u' in -u"),
        (["---x", "busybox"], "bad flag syntax: ---x"),
        (["--=x", "busybox"], "bad flag syntax: --=x"),
    ],
)
def test_flag_errors_are_docker_s(args: list[str], message: str | None) -> None:
    if message is None:
        assert run_parser().parse_args(args).command == ["--name"]
    else:
        assert usage_error(run_parser(), *args) == message


def test_type_error_names_the_flag_and_go_s_reason() -> None:
    assert usage_error(run_parser(), "--cpus", "x", "busybox") == (
        'invalid argument "x" for "--cpus" flag: strconv.ParseFloat: parsing "x": invalid syntax'
    )
    parser = FlagParser("ps")
    parser.add_argument("-n", "--last", type=int)
    assert parser.parse_args(["-n", "-3"]).last == -3
    for bad in ("x", "1.5", "1_000", " 7"):
        assert usage_error(parser, "-n", bad) == (
            f'invalid argument "{bad}" for "-n, --last" flag: strconv.ParseInt: parsing "{bad}": invalid syntax'
        )


def test_custom_type_error_gives_its_message() -> None:
    def port(text: str) -> int:
        raise ValueError(f"{text} is not a port")

    parser = FlagParser("x")
    parser.add_argument("--port", type=port)
    assert (
        usage_error(parser, "--port", "web") == 'invalid argument "web" for "--port" flag: web is not a port'
    )


def test_choices_are_checked() -> None:
    parser = FlagParser("registry serve")
    parser.add_argument("--auth", choices=("none", "htpasswd", "token"), default="none")
    assert parser.parse_args([]).auth == "none"
    assert parser.parse_args(["--auth=token"]).auth == "token"
    assert usage_error(parser, "--auth", "ldap") == (
        'invalid argument "ldap" for "--auth" flag: must be one of none, htpasswd, token'
    )


def test_required_flag_missing() -> None:
    parser = FlagParser("registry serve")
    parser.add_argument("--storage", required=True)
    parser.add_argument("--addr", required=True)
    assert usage_error(parser, "--addr", "x") == 'required flag(s) "storage" not set'
    assert usage_error(parser) == 'required flag(s) "storage", "addr" not set'


@pytest.mark.parametrize(
    ("positionals", "args", "message"),
    [
        ([("containers", "+")], [], '"pallet x" requires at least 1 argument'),
        ([("a", None), ("b", None)], ["1"], '"pallet x" requires exactly 2 arguments'),
        ([("a", None), ("b", None)], ["1", "2", "3"], '"pallet x" requires exactly 2 arguments'),
        ([("a", None)], [], '"pallet x" requires exactly 1 argument'),
        ([("a", "?")], ["1", "2"], '"pallet x" requires at most 1 argument'),
        (
            [("a", None), ("b", "?")],
            ["1", "2", "3"],
            '"pallet x" requires at least 1 and at most 2 arguments',
        ),
        ([], ["1"], '"pallet x" accepts no arguments'),
    ],
)
def test_wrong_number_of_positionals_is_docker_s_error(
    positionals: list[tuple[str, str | None]], args: list[str], message: str
) -> None:
    parser = FlagParser("x")
    for name, nargs in positionals:
        parser.add_argument(name, nargs=nargs)
    assert usage_error(parser, *args) == message


def test_usage_error_points_to_the_command_help() -> None:
    with pytest.raises(UsageError) as caught:
        rm_parser().parse_args(["--bogus", "x"])
    assert str(caught.value) == "unknown flag: --bogus; see 'pallet rm --help'"


@pytest.mark.parametrize("names", [("-a", "-b"), ("--all", "-bc"), ("-ab",), ("--all", "-")])
def test_bad_option_names_are_programming_errors(names: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="option names"):
        FlagParser("x").add_argument(*names)


def test_remainder_must_be_last() -> None:
    parser = FlagParser("x")
    parser.add_argument("command", nargs=REMAINDER)
    with pytest.raises(ValueError, match="REMAINDER"):
        parser.add_argument("more")


# --- help ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-h", "--help", "--help=true"])
def test_help_prints_docker_style_help_to_out(flag: str) -> None:
    out = io.StringIO()
    with pytest.raises(HelpRequested):
        run_parser(out).parse_args([flag])
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[:4] == [
        "Usage:  pallet run [OPTIONS] IMAGE [COMMAND] [ARG...]",
        "",
        "Create and run a new container from an image",
        "",
    ]
    assert lines[4] == "Options:"
    # the help column starts three spaces after the longest flag
    width = len("      --memory-swap string")
    assert f"{'  -d, --detach':<{width}}   run in the background" in lines
    assert "      --name string" in lines
    assert "  -e, --env list" in lines
    assert "      --cpus decimal" in lines
    assert "      --rm" in lines
    assert "--secret" not in text  # SUPPRESS hides it
    assert "--help" not in text  # docker hides it too


def test_help_columns_are_aligned() -> None:
    out = io.StringIO()
    parser = FlagParser("images", out, description="List images")
    parser.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]", help="only this repository")
    parser.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    parser.add_argument("--format", help="a Go template")
    parser.add_argument("-f", "--filter", action="append", default=[], metavar="FILTER", help="filter output")
    parser.print_help()
    assert out.getvalue() == (
        "Usage:  pallet images [OPTIONS] [REPOSITORY[:TAG]]\n"
        "\n"
        "List images\n"
        "\n"
        "Arguments:\n"
        "  [REPOSITORY[:TAG]]   only this repository\n"
        "\n"
        "Options:\n"
        "  -f, --filter FILTER   filter output\n"
        "      --format string   a Go template\n"
        "  -q, --quiet           only show image IDs\n"
    )


def test_help_wins_over_missing_positionals_and_stops_parsing() -> None:
    out = io.StringIO()
    parser = rm_parser()
    parser.out = out
    with pytest.raises(HelpRequested):
        parser.parse_args(["--help", "--bogus"])
    assert out.getvalue().startswith("Usage:  pallet rm [OPTIONS] CONTAINER [CONTAINER...]\n")


def test_help_after_the_image_is_the_command_s() -> None:
    assert run_parser().parse_args(["busybox", "--help"]).command == ["--help"]


def test_usage_line_without_options_or_positionals() -> None:
    out = io.StringIO()
    parser = FlagParser("x", out)
    parser.add_argument("ps_args", nargs=REMAINDER, metavar="[ps OPTIONS]")
    parser.print_help()
    assert out.getvalue() == "Usage:  pallet x [ps OPTIONS]\n"


def test_help_goes_to_the_file_given() -> None:
    out, other = io.StringIO(), io.StringIO()
    rm_parser_with_out = rm_parser()
    rm_parser_with_out.out = out
    rm_parser_with_out.print_help(other)
    assert out.getvalue() == ""
    assert other.getvalue().startswith("Usage:  pallet rm")


# --- round trip -----------------------------------------------------------------------------------

_values = st.lists(st.text(st.characters(blacklist_categories=("Cs",)), max_size=12), max_size=8)


@given(values=_values, forms=st.lists(st.sampled_from(["--env v", "--env=v", "-ev", "-e v"]), min_size=8))
def test_any_values_round_trip_into_the_append_list(values: list[str], forms: list[str]) -> None:
    args: list[str] = []
    for value, form in zip(values, forms, strict=False):
        if form == "--env v":
            args += ["--env", value]
        elif form == "--env=v":
            args.append(f"--env={value}")
        elif form == "-ev" and value and not value.startswith("="):
            args.append(f"-e{value}")
        else:
            args += ["-e", value]
    ns = run_parser().parse_args([*args, "busybox"])
    assert ns.env == values
    assert ns.image == "busybox"


@given(words=st.lists(st.text(max_size=6), max_size=6))
def test_remainder_keeps_every_word_after_the_image(words: list[str]) -> None:
    ns = run_parser().parse_args(["-it", "img", *words])
    assert ns.command == words


# --- the import budget --------------------------------------------------------------------------


def test_flags_module_imports_no_stdlib_module_beyond_builtins() -> None:
    code = (
        "import sys; before = set(sys.modules); import pallet.cli.flags;"
        "print(sorted(set(sys.modules) - before))"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=False)
    if done.returncode:  # not installed in the isolated interpreter: use the path of this checkout
        import pallet

        top = pallet.__path__[0].rsplit("/", 1)[0]
        code = f"import sys; sys.path.insert(0, {top!r}); " + code
        done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['__future__', 'pallet', 'pallet.cli', 'pallet.cli.flags']"


def test_cli_help_imports_no_argparse_re_or_gettext() -> None:
    code = (
        "import sys; from pallet.cli.main import main; main(['run', '--help']);"
        "print(sorted(m for m in ('argparse', 're', 'gettext') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
