"""A local OpenAI-compatible server (127.0.0.1, a thread) that serves a built-in teacher through
/v1/completions and /v1/chat/completions, with faults injected by the prompt itself, so that
they are the same whatever order concurrent requests arrive in:

- "FAIL:<status>:<n>" in a prompt: its first n requests get that HTTP status (a 429 carries
  `Retry-After: 0`), the later ones an answer;
- "MALFORMED" in a prompt: a 200 whose body is not a completion.

It speaks HTTP/1.1 with keep-alive and TCP_NODELAY, as the servers it stands for do (vLLM,
hosted APIs), and counts the TCP connections its clients open (`connections`) beside their requests.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import torch

from models.zoo import load_torch, parse_spec
from distill.local_teacher import generate_ids

KEY = "test-key"


class TeacherServer:
    def __init__(self, teacher: str = "builtin:teacher"):
        self.model = load_torch(parse_spec(teacher)).module.eval()
        self.seen: Counter = Counter()  # requests per prompt
        self.requests = 0
        self.connections = 0
        self.lock = threading.Lock()  # one generation at a time; counters shared by threads
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def fault(self, prompt: str) -> str | None:
        with self.lock:
            self.requests += 1
            self.seen[prompt] += 1
            n = self.seen[prompt]
        if "MALFORMED" in prompt:
            return "malformed"
        m = re.search(r"FAIL:(\d+):(\d+)", prompt)
        return m.group(1) if m and n <= int(m.group(2)) else None

    def complete(self, prompt: str, max_tokens: int, temperature: float, top_p: float,
                 seed: int) -> tuple[str, int, int]:
        raw = prompt.encode("utf-8")[-(self.model.config.block_size - max_tokens):]
        ids = torch.tensor([list(raw)], dtype=torch.long)
        u = torch.tensor(np.random.default_rng(seed).random((1, max_tokens)))
        with self.lock:
            new = generate_ids(self.model, ids, max_tokens, temperature, top_p, u)[0].tolist()
        return bytes(new).decode("utf-8", errors="replace"), len(raw), len(new)


def _handler(server: TeacherServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: one handler serves a connection's requests
        disable_nagle_algorithm = True  # as asyncio servers (uvicorn, vLLM) do by default

        def setup(self):
            super().setup()
            with server.lock:
                server.connections += 1

        def log_message(self, *args):  # quiet test output
            pass

        def _send(self, status: int, body: bytes, headers: dict | None = None):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.headers.get("Authorization") != f"Bearer {KEY}":
                return self._send(401, b'{"error": {"message": "bad key"}}')
            chat = self.path.endswith("/chat/completions")
            if not chat and not self.path.endswith("/completions"):
                return self._send(404, b'{"error": {"message": "no such route"}}')
            prompt = body["messages"][-1]["content"] if chat else body["prompt"]
            fault = server.fault(prompt)
            if fault == "malformed":
                return self._send(200, b'{"choices": [], "oops": tru')
            if fault is not None:
                return self._send(int(fault), b'{"error": {"message": "injected"}}',
                                  {"Retry-After": "0"} if fault == "429" else None)
            text, n_in, n_out = server.complete(prompt, body["max_tokens"], body["temperature"],
                                                body["top_p"], body["seed"])
            choice = ({"message": {"role": "assistant", "content": text}} if chat
                      else {"text": text})
            doc = {"object": "chat.completion" if chat else "text_completion",
                   "model": body["model"], "choices": [{"index": 0, **choice,
                                                        "finish_reason": "length"}],
                   "usage": {"prompt_tokens": n_in, "completion_tokens": n_out,
                             "total_tokens": n_in + n_out}}
            return self._send(200, json.dumps(doc).encode())

    return Handler
