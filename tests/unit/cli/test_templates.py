"""The ``--format`` Go-template subset and docker's table layout."""

from __future__ import annotations

import io
import re

import pytest

from pallet.cli.exits import UsageError
from pallet.cli.output import print_inspect, print_rows
from pallet.cli.tables import human_duration, human_size, write_columns
from pallet.cli.templates import Template

ROW = {
    "Repository": "busybox",
    "Tag": "latest",
    "ID": "abcdef012345",
    "Labels": ["a", "b"],
    "Config": {"User": ""},
}


def test_field_lookups_and_escapes_render_like_go() -> None:
    assert Template(r"{{.Repository}}:{{.Tag}}\t{{ .ID }}").render(ROW) == "busybox:latest\tabcdef012345"


def test_nested_field_and_missing_key() -> None:
    assert Template("{{.Config.User}}|{{.Config.Nope}}").render(ROW) == "|<no value>"


def test_json_of_dot_and_of_a_field() -> None:
    assert Template("{{json .Labels}}").render(ROW) == '["a","b"]'
    assert Template("{{json .}}").render({"A": 1}) == '{"A":1}'


def test_lists_print_as_go_slices_and_join_joins() -> None:
    assert Template("{{.Labels}}").render(ROW) == "[a b]"
    assert Template('{{join .Labels ","}}').render(ROW) == "a,b"


def test_unsupported_action_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unsupported action"):
        Template("{{printf .Labels}}")


NETWORK = {
    "Name": "app",
    "IPAM": {"Config": [{"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.1"}, {"Subnet": "fd00::/64"}]},
    "Options": {"com.docker.network.bridge.name": "br0"},
    "Containers": {"b": {"Name": "web"}, "a": {"Name": "db"}},
    "Labels": {},
}


def test_range_over_a_list_and_over_a_map_in_key_order() -> None:
    assert Template("{{range .IPAM.Config}}{{.Subnet}} {{end}}").render(NETWORK) == "10.1.0.0/24 fd00::/64 "
    assert Template("{{range .Containers}}{{.Name}},{{end}}").render(NETWORK) == "db,web,"


def test_range_else_and_if_else() -> None:
    assert Template("{{range .Labels}}x{{else}}none{{end}}").render(NETWORK) == "none"
    assert Template("{{if .Labels}}some{{else}}no labels{{end}}").render(NETWORK) == "no labels"
    assert Template("{{if .Options}}{{.Name}}{{end}}").render(NETWORK) == "app"
    assert (
        Template("{{range .IPAM.Config}}{{if .Gateway}}{{.Gateway}}{{end}}{{end}}").render(NETWORK)
        == "10.1.0.1"
    )


def test_index_of_a_map_key_and_a_list_position() -> None:
    assert Template('{{index .Options "com.docker.network.bridge.name"}}').render(NETWORK) == "br0"
    assert Template('{{index .Options "nope"}}').render(NETWORK) == "<no value>"
    assert Template('{{index .IPAM.Config 1 "Subnet"}}').render(NETWORK) == "fd00::/64"


def test_trim_markers_drop_the_white_space_beside_them() -> None:
    assert (
        Template("{{range .IPAM.Config -}}\n  {{.Subnet}}\n{{- end}}").render(NETWORK)
        == "10.1.0.0/24fd00::/64"
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{{range .IPAM.Config}}", "unclosed {{range}}"),
        ("{{end}}", "unexpected {{end}}"),
        ("{{else}}", "unexpected {{else}}"),
        ("{{range $a, $b, $c := .Options}}{{end}}", "want range $v := X or range $k, $v := X"),
        ("{{if $v := .Options}}{{end}}", "want range $v := X"),
        ("{{$nope}}", "undefined variable $nope"),
        ("{{(index .Options}}", "unclosed '('"),
        ("{{range .Name}}{{end}}", "range can't iterate over app"),
    ],
)
def test_bad_blocks_are_usage_errors(text: str, words: str) -> None:
    with pytest.raises(UsageError, match=re.escape(words)):
        Template(text).render(NETWORK)


def test_unclosed_action_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unclosed"):
        Template("{{.ID")


def test_table_template_prints_docker_titles_aligned() -> None:
    out = io.StringIO()
    rows = [ROW, {**ROW, "Repository": "a-much-longer-name"}]
    print_rows(out, rows, r"table {{.Repository}}\t{{.ID}}", default="", titles={"ID": "IMAGE ID"})
    assert out.getvalue().splitlines() == [
        "REPOSITORY           IMAGE ID",
        "busybox              abcdef012345",
        "a-much-longer-name   abcdef012345",
    ]


def test_format_json_prints_one_object_per_line() -> None:
    out = io.StringIO()
    print_rows(out, [{"A": 1}, {"A": 2}], "json", default="", titles={})
    assert out.getvalue() == '{"A":1}\n{"A":2}\n'


def test_inspect_default_is_an_indented_array() -> None:
    out = io.StringIO()
    print_inspect(out, [{"Id": "x"}], None)
    assert out.getvalue().startswith("[\n    {")


def test_columns_have_min_width_10_and_padding_3() -> None:
    out = io.StringIO()
    write_columns(out, [["TAG", "SIZE"], ["latest", "1MB"]])
    assert out.getvalue() == "TAG       SIZE\nlatest    1MB\n"


@pytest.mark.parametrize(
    ("size", "text"), [(0, "0B"), (999, "999B"), (1000, "1kB"), (4261000, "4.26MB"), (218_400_000, "218MB")]
)
def test_human_size_matches_docker(size: int, text: str) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "Less than a second"),
        (30, "30 seconds"),
        (90, "About a minute"),
        (600, "10 minutes"),
        (3600, "About an hour"),
        (5 * 3600, "5 hours"),
        (3 * 86400, "3 days"),
        (21 * 86400, "3 weeks"),
        (90 * 86400, "3 months"),
        (3 * 365 * 86400, "3 years"),
    ],
)
def test_human_duration_matches_go_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


PORTS = {
    "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "53/udp": None}}
}


def test_range_binds_key_and_value_variables_and_dollar_is_the_input() -> None:
    text = "{{range $p, $conf := .NetworkSettings.Ports}}{{if $conf}}{{$p}}={{(index $conf 0).HostPort}} {{end}}{{end}}"
    assert Template(text).render(PORTS) == "80/tcp=8080 "
    assert Template("{{range $c := .IPAM.Config}}{{$c.Subnet}}@{{$.Name}} {{end}}").render(NETWORK) == (
        "10.1.0.0/24@app fd00::/64@app "
    )
    assert Template("{{range $i, $c := .IPAM.Config}}{{$i}}{{end}}").render(NETWORK) == "01"


def test_parenthesized_expression_then_field() -> None:
    assert Template('{{(index .NetworkSettings.Ports "80/tcp" 0).HostPort}}').render(PORTS) == "8080"
    assert (
        Template("{{json (index .IPAM.Config 0)}}").render(NETWORK)
        == '{"Subnet":"10.1.0.0/24","Gateway":"10.1.0.1"}'
    )
