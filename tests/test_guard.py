"""Both servers (`serve RECORDING` and `serve --live`) refuse what a foreign web page can make a browser send:
requests naming another host (DNS rebinding: 421), and cross-origin WebSockets, event streams and POSTs (403).
Real server processes on 127.0.0.1; the forged headers are sent by httpx and the `websockets` client.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from processes import start, stop, wait_for
from shared import shared_recording
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

FOREIGN = ("http://evil.example", "null", "http://localhost.evil.example:{port}", "http://127.0.0.1:1")


@pytest.fixture(scope="module")
def recording_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("recording")
    proc, url = start(["serve", str(shared_recording("simple_capture.parquet")), "--port", "0",
                       "--allowed-host", "myname", "--allowed-host", "Other.Name"], logs / "serve.log")
    yield url
    stop(proc)
    assert "Traceback" not in (logs / "serve.log").read_text()  # every refusal is an answer, never a crash


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    logs = tmp_path_factory.mktemp("live")
    agent, agent_url = start(["replay", str(shared_recording("demo.parquet")), "--port", "0"], logs / "replay.log")
    try:
        proc, url = start(["serve", "--live", agent_url, "--port", "0", "--interval", "500ms",
                           "--allowed-host", "myname", "--allowed-host", "Other.Name"], logs / "live.log")
        try:
            wait_for(lambda: httpx.get(url).status_code == 200)  # the first snapshots are in
            yield url
        finally:
            stop(proc)
    finally:
        stop(agent)
    assert "Traceback" not in (logs / "live.log").read_text()


@pytest.fixture(params=["recording", pytest.param("live", marks=pytest.mark.live)])
def server(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(f"{request.param}_server")


def port_of(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


def first_event(url: str, headers: dict[str, str]) -> tuple[int, str | None]:
    """The status code of the overview's event stream and, when it is 200, the name of its first event."""
    with httpx.stream("GET", url + "api/stream", params={"section": "overview"}, headers=headers,
                      timeout=10) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, None
        line = next(response.iter_lines())
        return 200, line.split(":", 1)[1].strip()


@pytest.mark.parametrize("path", ["", "index.html", "api/metrics", "api/v1/query?query=1", "api/stream?section=x"])
@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1.evil.example:{port}",
                                  "localhost@evil.example", ""])
def test_a_request_naming_another_host_is_misdirected(server: str, path: str, host: str) -> None:
    response = httpx.get(server + path, headers={"Host": host.format(port=port_of(server))})
    assert response.status_code == 421
    assert "\n" not in response.text and "not served here" in response.json()["error"]
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "LOCALHOST:{port}",
                                  "myname:{port}", "myname", "other.name:{port}"])
def test_the_loopback_names_and_the_allowed_hosts_are_served(server: str, host: str) -> None:
    for path in ("", "api/metrics"):
        response = httpx.get(server + path, headers={"Host": host.format(port=port_of(server))})
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("origin", FOREIGN)
def test_a_websocket_from_another_origin_is_refused_before_it_opens(server: str, origin: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(server.replace("http://", "ws://") + "ws", origin=origin.format(port=port_of(server)))
    assert refused.value.response.status_code == 403


def test_a_websocket_naming_another_host_is_refused(server: str) -> None:
    """The handshake goes to our port over a socket of our own; the URL only names the host, as after rebinding."""
    port = port_of(server)
    with socket.create_connection(("127.0.0.1", port)) as sock, pytest.raises(InvalidStatus) as refused:
        connect(f"ws://evil.example:{port}/ws", sock=sock)
    assert refused.value.response.status_code == 421


@pytest.mark.parametrize("origin", [None, "http://127.0.0.1:{port}"])
def test_a_websocket_from_our_own_pages_or_no_page_streams(server: str, origin: str | None,
                                                          request: pytest.FixtureRequest) -> None:
    """Both modes serve /ws: a subscription gets the status first (a recording's says it will not change)."""
    with connect(server.replace("http://", "ws://") + "ws",
                 origin=origin.format(port=port_of(server)) if origin else None) as websocket:
        websocket.send(json.dumps({"section": "overview"}))
        message = json.loads(websocket.recv(timeout=20))
    assert message["type"] == "status"
    if request.node.callspec.params["server"] == "recording":
        assert message["data"] == {"mode": "recording", "agents": []}
    else:
        assert [agent["state"] for agent in message["data"]["agents"]] == ["connected"]


@pytest.mark.parametrize("origin", FOREIGN)
def test_an_event_stream_from_another_origin_is_refused(server: str, origin: str) -> None:
    assert first_event(server, {"Origin": origin.format(port=port_of(server))}) == (403, None)


def test_an_event_stream_a_browser_marks_cross_site_is_refused(server: str) -> None:
    assert first_event(server, {"Sec-Fetch-Site": "cross-site"}) == (403, None)


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}])
def test_an_event_stream_from_our_own_pages_or_no_page_streams(server: str, headers: dict[str, str]) -> None:
    headers = {k: v.format(port=port_of(server)) for k, v in headers.items()}
    assert first_event(server, headers) == (200, "status")


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Sec-Fetch-Site": "cross-site"}])
def test_a_form_post_from_another_site_is_refused(server: str, headers: dict[str, str]) -> None:
    """A form POST needs no CORS preflight: without the check any page could make the browser run a query."""
    response = httpx.post(server + "api/v1/query", data={"query": "1+1"}, headers=headers)
    assert response.status_code == 403
    assert response.json() == {"error": "cross-origin request refused"}
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("headers", [{}, {"Origin": "http://127.0.0.1:{port}"}])
def test_a_post_from_our_own_pages_or_a_tool_is_answered(server: str, headers: dict[str, str]) -> None:
    headers = {k: v.format(port=port_of(server)) for k, v in headers.items()}
    response = httpx.post(server + "api/v1/query", data={"query": "1+1"}, headers=headers)
    assert response.status_code == 200
    assert response.json()["data"]["result"][1] == "2"
    assert "access-control-allow-origin" not in response.headers


def test_a_wrong_subscription_gets_an_error_and_the_websocket_stays_open(server: str) -> None:
    with connect(server.replace("http://", "ws://") + "ws") as websocket:
        for wrong in ("not json", json.dumps({"section": "nope"}), "[1]", b"\x00binary"):
            websocket.send(wrong)
            while (message := json.loads(websocket.recv(timeout=10)))["type"] != "error":
                pass  # live updates of an earlier subscription may come first
            assert "section" in message["data"]["error"]


def test_a_recording_websocket_answers_each_subscription_and_stays_open(recording_server: str) -> None:
    with connect(recording_server.replace("http://", "ws://") + "ws") as websocket:
        for _ in range(2):
            websocket.send(json.dumps({"section": "overview", "host": None, "since": 0}))
            assert json.loads(websocket.recv(timeout=10)) == {"type": "status", "id": None,
                                                           "data": {"mode": "recording", "agents": []}}
