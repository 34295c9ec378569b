"""1,000 malformed or random requests (hypothesis): each answered with a 4xx/5xx ``{"message"}``, the
service never dies, and nothing is left behind (no container, no exec, no file under the root)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

if TYPE_CHECKING:
    from conftest import ApiService

pytestmark = pytest.mark.root

_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.%:@", min_size=1, max_size=30).map(
    lambda s: "zz" + s  # no such container, image or exec
)
_VERSION = st.sampled_from(["", "/v1.41", "/v1.47", "/v1.12", "/v1.99", "/v9.0", "/v0.1"])
_RESOURCE_PATHS = st.sampled_from(
    [
        "/containers/{n}/json",
        "/containers/{n}/start",
        "/containers/{n}/stop",
        "/containers/{n}/kill",
        "/containers/{n}/wait",
        "/containers/{n}/attach",
        "/containers/{n}/logs",
        "/containers/{n}/top",
        "/containers/{n}/stats",
        "/containers/{n}/archive",
        "/containers/{n}/export",
        "/containers/{n}/changes",
        "/containers/{n}/rename",
        "/containers/{n}/pause",
        "/containers/{n}/resize",
        "/containers/{n}/exec",
        "/containers/{n}",
        "/exec/{n}/start",
        "/exec/{n}/json",
        "/exec/{n}/resize",
        "/{n}",
        "/containers/{n}/{n}/{n}",
    ]
)
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)
_CONFIG_KEYS = st.sampled_from(
    ["Image", "Cmd", "Env", "HostConfig", "Entrypoint", "Labels", "Tty", "Volumes", "User", "StopTimeout"]
)


@st.composite
def _bad_create_body(draw: st.DrawFn) -> bytes:
    """A create body that must be refused: not JSON, not an object, no image, or wrong types."""
    kind = draw(st.sampled_from(["bytes", "json", "object"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200).filter(lambda b: not b.strip().startswith(b"{")))
    if kind == "json":
        return json.dumps(draw(_JSONISH.filter(lambda v: not isinstance(v, dict)))).encode()
    doc = draw(st.dictionaries(_CONFIG_KEYS, _JSONISH, max_size=5))
    if isinstance(doc.get("Image"), str):
        doc["Image"] = "zz-no-such-image-" + doc["Image"]
    return json.dumps(doc).encode()


@st.composite
def _request(draw: st.DrawFn) -> bytes:
    """One whole HTTP request, as bytes."""
    kind = draw(st.sampled_from(["resource", "create", "query", "garbage", "method"]))
    version = draw(_VERSION)
    body = b""
    if kind == "resource":
        method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]))
        path = version + draw(_RESOURCE_PATHS).replace("{n}", quote(draw(_NAME), safe=""))
        if draw(st.booleans()):
            body = draw(st.binary(max_size=100))
    elif kind == "create":
        method, path, body = "POST", version + "/containers/create", draw(_bad_create_body())
    elif kind == "query":
        method = "GET"
        junk = quote(draw(st.text(max_size=30)), safe="")
        path = version + draw(
            st.sampled_from(
                [
                    f"/containers/json?filters={junk}x",
                    f"/containers/json?all={junk}x",
                    f"/containers/json?limit={junk}x",
                    f"/containers/zzz/logs?stdout=1&tail={junk}x",
                    f"/containers/zzz/logs?stdout=1&since={junk}x",
                ]
            )
        )
    elif kind == "method":
        method = draw(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=8)).replace(
            "GET", "GOT"
        )
        method = method if method not in ("POST", "PUT", "HEAD") else "PATCH"
        path = version + "/containers/json"
    else:
        return draw(st.binary(min_size=1, max_size=300).filter(lambda b: b"\r\n\r\n" not in b)) + b"\r\n\r\n"
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
    if draw(st.booleans()):
        head += "Content-Type: application/json\r\n"
    return head.encode() + b"\r\n" + body


def _check_answer(answer: bytes, request: bytes) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 "), (request[:200], answer[:300])
    status = int(status_line.split()[1])
    assert 400 <= status < 600, (request[:200], answer[:300])
    if request.startswith(b"HEAD "):
        return  # no body to a HEAD
    if b"transfer-encoding: chunked" in head.lower():
        body = body.split(b"\r\n", 1)[1].rsplit(b"\r\n0\r\n", 1)[0]
    assert "message" in json.loads(body), (request[:200], answer[:300])


def test_a_thousand_bad_requests_get_json_errors_and_leave_nothing(api: ApiService) -> None:
    count = [0]

    @settings(
        max_examples=1000,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(request=_request())
    def check(request: bytes) -> None:
        count[0] += 1
        _check_answer(api.raw(request), request)
        if count[0] % 100 == 0:
            assert api.alive(), api.log()

    check()
    assert count[0] >= 1000
    assert api.alive(), api.log()
    assert api.request("GET", "/_ping")[0] == 200
    assert json.loads(api.request("GET", "/containers/json?all=1")[2]) == []
    assert api.env.container_ids() == []
