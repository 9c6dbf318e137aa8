"""The suite's network guard (conftest.py): only loopback connections get through."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from llmx_replay import ChatClient
from llmx_replay.models import ErrorEvent, InputText, Message, Prompt, ProviderSettings


def test_a_connection_beyond_loopback_is_refused_and_noted(network_guard: list[Any]) -> None:
    with pytest.raises(ConnectionRefusedError, match="may not reach a network"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)
    prompt = Prompt(input=[Message(role="user", content=[InputText(text="hi")])])
    provider = ProviderSettings(base_url="http://192.0.2.1/v1", request_max_retries=0)
    with ChatClient(provider, "m") as client:
        events = list(client.stream(prompt))
    assert isinstance(events[-1], ErrorEvent)
    assert events[-1].kind == "connection_failed"
    assert network_guard == [("192.0.2.1", 443), ("192.0.2.1", 80)]
    network_guard.clear()  # seen; the guard would otherwise fail this test at teardown


def test_loopback_gets_through() -> None:
    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Hello) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            response = httpx.get(f"http://127.0.0.1:{server.server_address[1]}/")
        finally:
            server.shutdown()
    assert response.text == "ok"
