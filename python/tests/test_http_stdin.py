"""The two ways in: HTTP (GET /api/status, JSON errors) and stdin commands."""

from __future__ import annotations

import http.client
import json

import pytest

REPLY_DEADLINE_S = 10.0


def request(port: int, method: str, path: str, body: bytes = b""):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body or None)
        response = conn.getresponse()
        data = response.read()
        return response, data
    finally:
        conn.close()


def test_status_endpoint(backend):
    response, data = request(backend.port, "GET", "/api/status")
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/json"
    body = json.loads(data)
    assert body["status"] == "running"
    assert body["pid"] == backend.ready_line["pid"]
    assert body["version"] == "1.0.0"
    assert isinstance(body["uptime"], (int, float)) and body["uptime"] >= 0


def test_status_endpoint_ignores_query_string(backend):
    response, data = request(backend.port, "GET", "/api/status?verbose=1")
    assert response.status == 200
    assert json.loads(data)["status"] == "running"


@pytest.mark.parametrize("path", ["/", "/api", "/api/status/extra", "/nope"])
def test_unknown_path_is_json_404(backend, path):
    response, data = request(backend.port, "GET", path)
    assert response.status == 404
    assert response.getheader("Content-Type") == "application/json"
    assert json.loads(data) == {"error": "not found", "path": path}


def test_other_methods_are_json_405(backend):
    response, data = request(backend.port, "POST", "/api/status", b"{}")
    assert response.status == 405
    assert response.getheader("Allow") == "GET, HEAD"
    assert "error" in json.loads(data)


def test_malformed_request_is_json_400_and_server_survives(backend):
    import socket

    with socket.create_connection(("127.0.0.1", backend.port), timeout=10) as s:
        s.sendall(b"GET /a b HTTP/1.1\r\n\r\n")  # four words: bad syntax
        chunks = []
        while True:  # HTTP/1.0: the server closes after the answer
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        answer = b"".join(chunks).decode("latin-1")
    assert answer.startswith("HTTP/1.0 400"), answer
    assert json.loads(answer.split("\r\n\r\n", 1)[1])["error"]
    response, _ = request(backend.port, "GET", "/api/status")
    assert response.status == 200


def test_http_is_quiet_without_debug(backend):
    request(backend.port, "GET", "/api/status")
    backend.close_stdin()
    backend.finish()
    assert backend.stderr == ""


def test_debug_logs_requests_to_stderr(spawn):
    b = spawn("--port", "0", "--debug")
    port = b.ready()["port"]
    request(port, "GET", "/api/status")
    b.close_stdin()
    b.finish()
    assert "GET /api/status" in b.stderr


def expect_reply(backend, what: str) -> dict:
    return backend.expect(lambda o: "reply" in o or "error" in o, REPLY_DEADLINE_S, what)


def test_ping(backend):
    backend.send('{"action": "ping"}\n')
    assert expect_reply(backend, "pong") == {"reply": "pong"}


@pytest.mark.parametrize("command_id", [7, "abc", None, {"n": [1]}])
def test_reply_echoes_the_command_id(backend, command_id):
    backend.send(json.dumps({"action": "ping", "id": command_id}) + "\n")
    assert expect_reply(backend, "pong") == {"reply": "pong", "id": command_id}


def test_error_reply_echoes_the_command_id(backend):
    backend.send('{"action": "fly", "id": 9}\n')
    reply = expect_reply(backend, "error")
    assert reply["id"] == 9 and "unknown action" in reply["error"]


@pytest.mark.parametrize(
    "line, error",
    [
        ("garbage", "invalid JSON"),
        ("{not json", "invalid JSON"),
        ("[1, 2]", 'expected a JSON object with an "action" field'),
        ('"ping"', 'expected a JSON object with an "action" field'),
        ('{"cmd": "ping"}', 'expected a JSON object with an "action" field'),
        ('{"action": "explode"}', 'unknown action: "explode"'),
        ('{"action": 42}', "unknown action: 42"),
        ("\xff\xfe", "invalid JSON"),
    ],
)
def test_bad_commands_answer_an_error_and_keep_running(backend, line, error):
    backend.send(line + "\n")
    reply = expect_reply(backend, "error reply")
    assert set(reply) == {"error"}
    assert error in reply["error"]
    # Still alive and still answering, on stdin and over HTTP.
    backend.send('{"action": "ping"}\n')
    assert expect_reply(backend, "pong") == {"reply": "pong"}
    assert request(backend.port, "GET", "/api/status")[0].status == 200


def test_invalid_utf8_is_an_error(backend):
    assert backend.proc.stdin is not None
    backend.proc.stdin.write(b'{"action": "\xff"}\n')
    backend.proc.stdin.flush()
    assert expect_reply(backend, "error") == {"error": "command is not valid UTF-8"}


def test_blank_lines_are_ignored(backend):
    backend.send("\n   \n")
    backend.send('{"action": "ping"}\n')
    assert expect_reply(backend, "pong") == {"reply": "pong"}


def test_overlong_command_is_rejected_once(backend):
    backend.send("x" * (200 * 1024) + "\n")
    reply = expect_reply(backend, "error")
    assert "longer than" in reply["error"]
    backend.send('{"action": "ping"}\n')
    assert expect_reply(backend, "pong") == {"reply": "pong"}


def test_commands_split_across_writes(backend):
    backend.send('{"action":')
    backend.send(' "ping"}\n{"action": "ping"}\n')
    assert expect_reply(backend, "pong") == {"reply": "pong"}
    assert expect_reply(backend, "pong") == {"reply": "pong"}


def test_shutdown_command(backend):
    backend.send('{"action": "shutdown"}\n')
    lines = backend.finish()
    assert backend.proc.returncode == 0
    assert {"reply": "shutting down"} in lines
    assert {"status": "stopping", "reason": "shutdown command"} in lines
    assert lines[-1] == {"status": "stopped"}


def test_last_command_without_newline_is_handled_at_end_of_file(backend):
    backend.send('{"action": "ping"}')
    backend.close_stdin()
    lines = backend.finish()
    assert {"reply": "pong"} in lines
    assert lines[-1] == {"status": "stopped"}
    assert backend.proc.returncode == 0
