"""The API teacher's connections (issue 20), against a stub server of the standard library (no
model): one kept connection per worker thread, a fresh one after a timeout, one silent resend
when the server has closed a kept connection, and HTTP_PROXY honoured as urllib honoured it."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from distill.api_teacher import ApiTeacher
from distill.generate import Prompt, make_generate_config

ANSWER = json.dumps({"choices": [{"text": "ok", "finish_reason": "length"}],
                     "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).encode()


class Stub:
    """A keep-alive server; `script` maps a request number (1-based) to what it does instead of
    answering: "slow" (answer after 1 s), "close-after" (answer, then close the connection
    without saying so, as a server drops an idle one)."""

    def __init__(self, script: dict[int, str] | None = None):
        self.script, self.paths, self.connections = script or {}, [], 0
        self.proxy_auth: list = []  # each request's Proxy-Authorization header (or None)
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _handler(stub: Stub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def setup(self):
            super().setup()
            with stub.lock:
                stub.connections += 1

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            with stub.lock:
                stub.paths.append(self.path)
                stub.proxy_auth.append(self.headers.get("Proxy-Authorization"))
                action = stub.script.get(len(stub.paths))
            if action == "slow":
                time.sleep(1.0)
            self.send_response(200)
            self.send_header("Content-Length", str(len(ANSWER)))
            self.end_headers()
            self.wfile.write(ANSWER)
            if action == "close-after":
                self.close_connection = True

    return Handler


@pytest.fixture
def stub_teacher(monkeypatch):
    monkeypatch.setenv("ROI_STUB_KEY", "k")
    for var in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(var, raising=False)
    stubs = []

    def make(base_url: str | None = None, script=None, **kw):
        stubs.append(Stub(script))
        cfg = make_generate_config({
            "teacher": "api:m", "api_base_url": base_url or stubs[-1].url + "/v1",
            "api_key_env": "ROI_STUB_KEY", "max_new_tokens": 1, "backoff_s": 0.01,
            "backoff_max_s": 0.01, "concurrency": 1, **kw})
        return ApiTeacher(cfg), stubs[-1]

    yield make
    for s in stubs:
        s.close()


def _prompts(n: int) -> list[Prompt]:
    return [Prompt(f"p{i}", f"x{i}") for i in range(n)]


def test_requests_share_one_kept_connection_per_worker(stub_teacher):
    teacher, stub = stub_teacher(concurrency=3)
    done = list(teacher.complete_all(_prompts(30)))
    assert [c.error for c in done] == [None] * 30 and teacher.requests_sent == 30
    assert 1 <= stub.connections <= 3 and teacher.connections.opened == stub.connections


def test_a_timeout_is_retried_on_a_new_connection(stub_teacher):
    teacher, stub = stub_teacher(script={2: "slow"}, timeout_s=0.3, max_retries=2)
    done = list(teacher.complete_all(_prompts(3)))
    assert [c.error for c in done] == [None] * 3
    assert [c.attempts for c in done] == [1, 2, 1]  # the timed-out request, retried once
    assert stub.connections == 2 and teacher.requests_sent == 4


def test_a_kept_connection_closed_by_the_server_is_replaced_without_a_retry(stub_teacher):
    teacher, stub = stub_teacher(script={1: "close-after"}, max_retries=0)
    done = list(teacher.complete_all(_prompts(3)))
    assert [(c.error, c.attempts) for c in done] == [(None, 1)] * 3
    assert stub.connections == 2 and teacher.requests_sent == 3 and len(stub.paths) == 3


def test_http_proxy_is_honoured_and_no_proxy_exempts(stub_teacher, monkeypatch):
    _, proxy = stub_teacher()  # the stub answers as a proxy would
    monkeypatch.setenv("http_proxy", proxy.url)
    teacher, _ = stub_teacher(base_url="http://api.invalid/v1")
    assert [c.error for c in teacher.complete_all(_prompts(1))] == [None]
    assert proxy.paths == ["http://api.invalid/v1/completions"]  # the absolute URL
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    teacher, direct = stub_teacher(max_retries=0)
    assert [c.error for c in teacher.complete_all(_prompts(1))] == [None]
    assert direct.paths == ["/v1/completions"] and len(proxy.paths) == 1


def test_a_proxy_s_credentials_go_to_the_proxy_only(stub_teacher, monkeypatch):
    """user:password@ in HTTP_PROXY becomes Basic Proxy-Authorization on what the plain-HTTP
    proxy forwards; for https it rides on the tunnel's CONNECT, never to the host behind it."""
    import base64

    from distill.api_teacher import _Connections

    _, proxy = stub_teacher()
    host_port = proxy.url.removeprefix("http://")
    monkeypatch.setenv("http_proxy", f"http://us%40er:p%3Ass@{host_port}")
    teacher, _ = stub_teacher(base_url="http://api.invalid/v1")
    assert [c.error for c in teacher.complete_all(_prompts(1))] == [None]
    assert proxy.proxy_auth == ["Basic " + base64.b64encode(b"us@er:p:ss").decode()]
    monkeypatch.setenv("https_proxy", f"http://u:p@{host_port}")
    tunnel = _Connections("https://api.invalid/v1/completions", 5.0)
    assert tunnel.request_headers == {}  # nothing for the host behind the tunnel
    conn, _ = tunnel.get()
    assert conn._tunnel_headers == {"Proxy-Authorization": "Basic "
                                    + base64.b64encode(b"u:p").decode()}
    tunnel.close_all()
