"""A teacher behind an OpenAI-compatible HTTP API (standard library only: http.client + threads).

Shapes (api_endpoint):
    completions  POST {base}/completions       {"model", "prompt", "max_tokens", "temperature",
                                                 "top_p", "seed"} -> choices[0].text
    chat         POST {base}/chat/completions  {"model", "messages": [{"role": "user",
                                                 "content": prompt}], ...} -> choices[0].message
                                                 .content
`completions` continues the prompt, which is what sequence-level distillation of a language model
wants; `chat` is for chat-only models (most hosted ones), whose answer is not a continuation.
Token counts come from the response's `usage` (None where a server leaves it out).

Robustness: at most `concurrency` requests in flight; 429, 5xx, timeouts and connection errors
are retried up to `max_retries` times after an exponentially growing delay with jitter (or the
server's Retry-After, capped at backoff_max_s); other errors and malformed bodies are not retried.
Every prompt that does not yield a sample comes back as a Completion with `error` set, which
distill.generate writes to failures.jsonl: nothing is lost and nothing is fatal. `max_requests`
caps the HTTP requests of one invocation, retries included.

Connections: each worker thread keeps one HTTP/1.1 connection open and sends its requests on it
(keep-alive), so an invocation opens about `concurrency` connections, not one per request. A
connection is dropped after a connection error or timeout, or a response that closes it, and
opened again on the next request; a request that finds its kept connection closed by the server
(idle too long) before any answer is sent once more at once on a fresh one, counted neither as a
retry nor against max_requests (the server never answered it).
HTTP_PROXY/HTTPS_PROXY/NO_PROXY are honoured, as urllib honoured them. An HTTP client package
(httpx2, which huggingface_hub brings into the [hf] extra) would pool as well, but would add
anyio, httpcore2, h11 and truststore to the extra `roi generate` needs, and the retries with
Retry-After stay this module's own either way.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import random
import threading
import time
import urllib.parse
import urllib.request
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from http.client import HTTPConnection, HTTPException, HTTPSConnection, RemoteDisconnected
from typing import Iterable, Iterator

from .generate_types import Completion, GenerateConfig, Prompt, sample_seed

log = logging.getLogger(__name__)
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
BODY_KEPT = 500  # characters of an error body kept in failures.jsonl


class _Budget:
    """A thread-safe count of the requests this invocation may still send (None: no cap)."""

    def __init__(self, limit: int | None):
        self.left, self.sent = limit, 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.left is not None and self.left <= 0:
                return False
            if self.left is not None:
                self.left -= 1
            self.sent += 1
            return True


class _Connections:
    """One kept-alive HTTP connection per thread, opened on first use; close_all() at the end."""

    def __init__(self, url: str, timeout_s: float):
        self._cls = HTTPSConnection if url.startswith("https:") else HTTPConnection
        self._host, self._port, self.path, self._tunnel, proxy_headers = _route(url)
        # a proxy's credentials: on the CONNECT of a tunnel (never to the host behind it), else
        # on each request a plain-HTTP proxy forwards
        self._tunnel_headers = proxy_headers if self._tunnel else None
        self.request_headers = {} if self._tunnel else proxy_headers
        self._timeout = timeout_s
        self._local, self._open, self._lock = threading.local(), set(), threading.Lock()
        self.opened = 0

    def get(self) -> tuple[HTTPConnection, bool]:
        """This thread's connection, and whether it has served a request before."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, True
        conn = self._cls(self._host, self._port, timeout=self._timeout)
        if self._tunnel:
            conn.set_tunnel(*self._tunnel, headers=self._tunnel_headers)
        self._local.conn = conn
        with self._lock:
            self._open.add(conn)
            self.opened += 1
        return conn, False

    def drop(self) -> None:
        """Close this thread's connection; the next get() opens a new one."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()
            with self._lock:
                self._open.discard(conn)

    def close_all(self) -> None:
        with self._lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            conn.close()


def _route(url: str) -> tuple[str, int | None, str, tuple | None, dict]:
    """(host, port, request path, CONNECT tunnel target, proxy headers) of a URL: direct, or
    through the proxy that HTTP_PROXY/HTTPS_PROXY name unless NO_PROXY exempts the host (as
    urllib did); a proxy URL's user:password@ becomes Basic Proxy-Authorization."""
    parts = urllib.parse.urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname):
        return parts.hostname, parts.port, path, None, {}
    via = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    headers = {}
    if via.username is not None:
        user = urllib.parse.unquote(via.username) + ":" + urllib.parse.unquote(via.password or "")
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
    if parts.scheme == "https":  # CONNECT through the proxy, then TLS with the host
        return via.hostname, via.port, path, (parts.hostname, parts.port), headers
    return via.hostname, via.port, url, None, headers  # a plain-HTTP proxy takes the whole URL


def retry_delay_s(attempt: int, base_s: float, cap_s: float, retry_after: str | None,
                  rng: random.Random) -> float:
    """Retry-After (seconds or an HTTP date) when the server sends one, else base · 2^attempt
    with "equal jitter" (half fixed, half uniform), both capped at cap_s."""
    if retry_after:
        try:
            wait_s = float(retry_after)
        except ValueError:
            try:
                wait_s = parsedate_to_datetime(retry_after).timestamp() - time.time()
            except (TypeError, ValueError):
                wait_s = None
        if wait_s is not None:
            return min(cap_s, max(0.0, wait_s))
    d = min(cap_s, base_s * 2**attempt)
    return d / 2 + rng.uniform(0, d / 2)


def parse_response(body: bytes, endpoint: str) -> tuple[str, int | None, int | None, str]:
    """(text, prompt tokens, completion tokens, finish reason); ValueError when malformed."""
    try:
        doc = json.loads(body)
        choice = doc["choices"][0]
        text = choice["text"] if endpoint == "completions" else choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise ValueError(f"malformed response ({type(e).__name__}: {e})") from None
    if not isinstance(text, str):
        raise ValueError(f"malformed response (text is {type(text).__name__}, not a string)")
    usage = doc.get("usage") if isinstance(doc.get("usage"), dict) else {}
    counts = [usage.get(k) for k in ("prompt_tokens", "completion_tokens")]
    counts = [c if isinstance(c, int) and c >= 0 else None for c in counts]
    return text, counts[0], counts[1], str(choice.get("finish_reason") or "")


class ApiTeacher:
    """Sends each prompt to the endpoint, with retries, a concurrency bound and a budget."""

    def __init__(self, cfg: GenerateConfig):
        self.cfg = cfg
        self.model = cfg.teacher.removeprefix("api:")
        path = "/completions" if cfg.api_endpoint == "completions" else "/chat/completions"
        self.url = cfg.api_base_url.rstrip("/") + path
        self._key = os.environ[cfg.api_key_env]  # check_ready refused a missing one
        self.budget = _Budget(cfg.max_requests)
        self.connections = _Connections(self.url, cfg.timeout_s)
        self.not_attempted = 0
        self._rng = random.Random(cfg.seed)
        self._rng_lock = threading.Lock()

    @property
    def requests_sent(self) -> int:
        return self.budget.sent

    def body(self, p: Prompt) -> dict:
        cfg = self.cfg
        body = {"model": self.model, "max_tokens": cfg.max_new_tokens,
                "temperature": cfg.temperature, "top_p": cfg.top_p,
                "seed": sample_seed(cfg.seed, p.id) % 2**31}
        if cfg.api_endpoint == "completions":
            body["prompt"] = p.text
        else:
            body["messages"] = [{"role": "user", "content": p.text}]
        return body

    def complete_all(self, prompts: Iterable[Prompt]) -> Iterator[Completion]:
        """Completions as they finish (not in prompt order). Stops sending when the budget is
        spent; prompts never sent are counted in not_attempted, not reported as failures."""
        try:
            yield from self._complete_pooled(iter(prompts))
        finally:
            self.connections.close_all()  # after the pool's threads are done with them

    def _complete_pooled(self, waiting: Iterator[Prompt]) -> Iterator[Completion]:
        pending = set()
        with ThreadPoolExecutor(max_workers=self.cfg.concurrency,
                                thread_name_prefix="api-teacher") as pool:
            try:
                for p in waiting:
                    pending.add(pool.submit(self.complete, p))
                    if len(pending) >= 2 * self.cfg.concurrency:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        yield from self._finished(done)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from self._finished(done)
            finally:
                for f in pending:
                    f.cancel()

    def _finished(self, done) -> Iterator[Completion]:
        for f in done:
            c = f.result()
            if c is None:
                self.not_attempted += 1
            else:
                yield c

    def complete(self, p: Prompt) -> Completion | None:
        """One prompt to a Completion (error set on failure); None when the budget was spent
        before its first request."""
        data = json.dumps(self.body(p)).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self._key}"}
        attempt, c = 0, None
        while True:
            if not self.budget.take():
                if c is None:
                    return None
                c.error = f"request budget exhausted after {attempt} attempt(s); last: {c.error}"
                return c
            last = self._send(p, data, headers)
            attempt += 1
            c = last.completion
            c.attempts = attempt
            if c.error is None or last.final or attempt > self.cfg.max_retries:
                return c
            with self._rng_lock:
                delay = retry_delay_s(attempt - 1, self.cfg.backoff_s, self.cfg.backoff_max_s,
                                      last.retry_after, self._rng)
            log.info("%s: %s; retry %d in %.2f s", p.id, c.error, attempt, delay)
            time.sleep(delay)

    def _send(self, p: Prompt, data: bytes, headers: dict) -> _Attempt:
        try:
            status, reason, retry_after, raw = self._post(data, headers)
        except (HTTPException, OSError) as e:  # timeouts and refused connections are OSErrors
            reason = str(e) or type(e).__name__
            return _Attempt(Completion(p.id, p.text, error=f"connection error: {reason}"))
        if not 200 <= status < 300:
            c = Completion(p.id, p.text, error=f"HTTP {status} {reason}", status=status,
                           body=_text(raw))
            return _Attempt(c, retry_after, final=status not in RETRY_STATUS)
        try:
            text, n_in, n_out, finish = parse_response(raw, self.cfg.api_endpoint)
        except ValueError as e:  # recorded with the body, not retried, not fatal
            return _Attempt(Completion(p.id, p.text, error=str(e), status=200, body=_text(raw)),
                            final=True)
        return _Attempt(Completion(p.id, p.text, text, n_in, n_out, finish))

    def _post(self, data: bytes, headers: dict) -> tuple[int, str, str | None, bytes]:
        """(status, reason, Retry-After, body) of one POST on this thread's kept connection;
        a kept connection the server closed meanwhile is replaced once, at once."""
        conn, reused = self.connections.get()
        try:
            conn.request("POST", self.connections.path, body=data,
                         headers={**headers, **self.connections.request_headers})
            resp = conn.getresponse()
            raw = resp.read()
        except (RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
            self.connections.drop()
            if not reused:
                raise
            log.debug("kept connection closed by the server (%s); reconnecting", e)
            return self._post(data, headers)
        except BaseException:
            self.connections.drop()
            raise
        if resp.will_close:
            self.connections.drop()
        return resp.status, resp.reason, resp.getheader("Retry-After"), raw


@dataclass
class _Attempt:
    """One HTTP request's outcome: the completion (or its error), the server's Retry-After,
    and whether retrying is pointless (a 4xx other than 408/409/429, a malformed body)."""

    completion: Completion
    retry_after: str | None = None
    final: bool = False


def _text(raw: bytes) -> str:
    return raw[:BODY_KEPT].decode("utf-8", errors="replace")
