"""Throughput of replaying one streamed Chat Completions body: llmx_replay vs the openai SDK.

What is measured, per body size (1k, 10k and 100k events by default):

* ``floor``: ``orjson.loads`` over the body's data payloads, already split out as bytes. No
  processor that parses the JSON can go faster; every other row is stated against it.
* ``ours core``: ``llmx_replay.EventPipeline(mode)`` fed the body in network-like pieces and
  then ``.end()``, for the modes ``raw``, ``streaming`` and ``aggregated``; the events are
  collected into a list, as a consumer would, and the last one must be ``Completed``.
* ``ours client``: ``llmx_replay.ChatClient`` (streaming mode) over ``httpx.MockTransport``,
  one full request per round, iterated to the end.
* ``SDK``: ``openai.OpenAI`` over ``httpx2.MockTransport``: ``chat.completions.create(...,
  stream=True)``, one full request per round, every chunk iterated.

How (the method of ``shared/notes/performance-baseline.md``, in ``benchmarks/_harness.py``):

* Bodies are generated, seeded and so identical from run to run: OpenAI-shaped
  ``chat.completion.chunk`` events of ~320 bytes of compact raw-UTF-8 JSON. One role chunk,
  ~20% reasoning deltas, ~45% content deltas, a tool-call header, ~35% tool-call argument
  fragments of 2-10 characters that join into one JSON object, a finish chunk
  (``tool_calls``), a usage chunk with empty choices, then ``data: [DONE]``. With
  ``--reasoning SHARE`` the reasoning deltas are that share of the events instead (at most
  60%), and content deltas the rest: a reasoning model's body, where streaming mode keeps
  one reasoning part per delta.
* The body is served in seeded random 1-4 KB pieces that ignore event boundaries.
* Each round times every method once, in an order rotated by one each round. A method's
  time is the median over rounds; its ``x floor`` is the median of the per-round ratios to the
  floor's time in the same round, and its speed-up is the median of the per-round ratios
  SDK time / its time. Events/s counts the JSON chunks, not ``[DONE]``.
* GC stays enabled, as in real tests; ``gc.collect()`` runs before each timed call (outside
  the timing) so that no method pays for another's garbage. Clients are built once, and
  every method runs once untimed on a small body before the first round. The events each
  method produces are checked once per size, outside the timing.

Run from the repository root::

    python benchmarks/replay_throughput.py [--sizes 1000 10000 100000]
        [--rounds N] [--sdk-rounds N] [--reasoning SHARE]
"""

import argparse
import random
import statistics
import string
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import httpx2
import openai
import orjson

# Benchmark the working tree, whether or not the package is installed in the environment;
# and import the shared harness from beside this script, however it is started.
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import Method, median_ratio, print_versions, run_rounds

from llmx_replay import ChatClient, EventPipeline, StreamMode
from llmx_replay.models import (
    Completed,
    FunctionCall,
    Message,
    OutputItemDone,
    OutputTextDelta,
    Prompt,
    ProviderSettings,
    Reasoning,
    ReasoningContentDelta,
    ResponseEvent,
)

SEED = 20250101
DEFAULT_SIZES = (1_000, 10_000, 100_000)
DEFAULT_ROUNDS = {1_000: 7, 10_000: 5, 100_000: 3}
REASONING_SHARE = 0.20
ARGUMENTS_SHARE = 0.35
MAX_REASONING_SHARE = 0.60  # the tool call takes 35% of the events; content keeps 5%
PIECE_BYTES = (1024, 4096)
WARMUP_EVENTS = 200
STREAMING_FLOOR_TARGET = 5.0
SDK_SPEEDUP_TARGET = 20.0

FLOOR = "orjson.loads, pre-split payloads (floor)"
CORE = "ours core: EventPipeline({})"
CLIENT = "ours client: ChatClient streaming, httpx MockTransport"
SDK = "openai SDK: create(stream=True), iterate chunks"
MODES: tuple[StreamMode, ...] = ("raw", "streaming", "aggregated")
LEGEND = (
    "\nmedian ms and events/s: median over rounds. time x floor: median of the per-round"
    " ratios to the floor (lower is better).\nspeed-up vs SDK: median of the per-round"
    " ratios SDK time / this row's time (higher is better)."
)

_WORDS = (
    "the", "stream", "replays", "a", "recorded", "turn", "of", "tokens", "and", "checks",
    "each", "event", "naïve", "café", "Grüße", "日本語", "Привет", "λ", "→", "😀", "über",
    '"quoted"', "it's", "x = 1;", "{json}", "\n", "\n\n- item", "déjà", "vu", "parse", "fast",
)  # fmt: skip
_MODEL = "gpt-4o-2024-08-06"
_Text = TypeVar("_Text", str, bytes)


# --------------------------------------------------------------------------- body


@dataclass(frozen=True)
class Body:
    """One generated response body and what a correct consumer must get from it."""

    data: bytes
    payloads: list[bytes]
    pieces: list[bytes]
    content: str
    reasoning: str
    reasoning_events: int
    arguments: str
    tool_name: str
    call_id: str

    @property
    def events(self) -> int:
        return len(self.payloads)


def _text(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(low, high)))


def _envelope(rng: random.Random) -> dict[str, Any]:
    suffix = "".join(rng.choices(string.ascii_letters + string.digits, k=29))
    return {
        "id": f"chatcmpl-{suffix}",
        "object": "chat.completion.chunk",
        "created": 1_767_225_600,
        "model": _MODEL,
        "service_tier": "default",
        "system_fingerprint": "fp_" + "".join(rng.choices("0123456789abcdef", k=10)),
    }


def _chunk(
    envelope: dict[str, Any], delta: dict[str, Any], finish_reason: str | None = None
) -> bytes:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
    return orjson.dumps({**envelope, "choices": [choice], "usage": None})


def _usage_chunk(envelope: dict[str, Any], reasoning_events: int, events: int) -> bytes:
    usage = {
        "prompt_tokens": 1234,
        "completion_tokens": events,
        "total_tokens": 1234 + events,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reasoning_events, "audio_tokens": 0},
    }
    return orjson.dumps({**envelope, "choices": [], "usage": usage})


def _arguments(rng: random.Random, length: int) -> str:
    """A JSON object of at least `length` characters, as a tool's arguments."""
    lines: list[str] = []
    document: dict[str, Any] = {"path": "notes/replay.md", "mode": "overwrite", "lines": lines}
    size = len(orjson.dumps(document).decode())  # in characters, as the text is measured
    while size < length:  # grown by each line's JSON and its comma, not dumped again
        lines.append(_text(rng, 3, 12))
        size += len(orjson.dumps(lines[-1]).decode()) + (len(lines) > 1)
    return orjson.dumps(document).decode()


def _cut(text: _Text, rng: random.Random, low: int, high: int) -> list[_Text]:
    """`text` in consecutive pieces of `low` to `high` characters (or bytes)."""
    pieces: list[_Text] = []
    start = 0
    while start < len(text):
        end = start + rng.randint(low, high)
        pieces.append(text[start:end])
        start = end
    return pieces


def generate_body(events: int, seed: int = SEED, reasoning_share: float = REASONING_SHARE) -> Body:
    """A deterministic body of exactly `events` JSON chunks, then ``data: [DONE]``.

    `reasoning_share` of the chunks are reasoning deltas.
    """
    rng = random.Random(seed + events)
    envelope = _envelope(rng)
    arguments = _arguments(rng, round(events * ARGUMENTS_SHARE) * 6)
    fragments = _cut(arguments, rng, 2, 10)
    reasoning = [_text(rng, 1, 5) for _ in range(round(events * reasoning_share))]
    content = [_text(rng, 1, 5) for _ in range(events - 4 - len(reasoning) - len(fragments))]
    if not content:
        raise ValueError(f"{events} events is too few for this body's shape")
    call_id, tool_name = "call_" + envelope["id"][-24:], "write_file"
    header = {"index": 0, "id": call_id, "type": "function"}
    payloads = [_chunk(envelope, {"role": "assistant", "content": "", "refusal": None})]
    payloads += [_chunk(envelope, {"reasoning": text}) for text in reasoning]
    payloads += [_chunk(envelope, {"content": text}) for text in content]
    payloads.append(
        _chunk(
            envelope,
            {"tool_calls": [{**header, "function": {"name": tool_name, "arguments": ""}}]},
        )
    )
    payloads += [
        _chunk(envelope, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        for piece in fragments
    ]
    payloads.append(_chunk(envelope, {}, "tool_calls"))
    payloads.append(_usage_chunk(envelope, len(reasoning), events))
    data = b"".join(b"data: " + payload + b"\n\n" for payload in payloads) + b"data: [DONE]\n\n"
    return Body(
        data=data,
        payloads=payloads,
        pieces=_cut(data, rng, *PIECE_BYTES),  # network-like: they ignore event boundaries
        content="".join(content),
        reasoning="".join(reasoning),
        reasoning_events=len(reasoning),
        arguments=arguments,
        tool_name=tool_name,
        call_id=call_id,
    )


# --------------------------------------------------------------------------- transports


class _Pieces(httpx.SyncByteStream):
    def __init__(self, pieces: Sequence[bytes]) -> None:
        self._pieces = pieces

    def __iter__(self) -> Iterator[bytes]:
        yield from self._pieces


class _Pieces2(httpx2.SyncByteStream):
    def __init__(self, pieces: Sequence[bytes]) -> None:
        self._pieces = pieces

    def __iter__(self) -> Iterator[bytes]:
        yield from self._pieces


class Server:
    """Serves the current body's pieces to both mock transports; clients are built once."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def httpx_handler(self, request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx.Response(200, headers=headers, stream=_Pieces(self.pieces))

    def httpx2_handler(self, request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, stream=_Pieces2(self.pieces))


# --------------------------------------------------------------------------- methods

_MESSAGES: list[Any] = [{"role": "user", "content": "hi"}]
_USER_HI = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
_PROMPT = Prompt.model_validate({"input": [_USER_HI]})


def _ended(events: list[ResponseEvent]) -> list[ResponseEvent]:
    if not events or type(events[-1]) is not Completed:
        raise RuntimeError(f"the stream did not end with Completed: {events[-1:]!r}")
    return events


def run_floor(body: Body) -> None:
    loads = orjson.loads
    for payload in body.payloads:
        loads(payload)


def run_core(body: Body, mode: StreamMode) -> list[ResponseEvent]:
    pipeline = EventPipeline(mode)
    events: list[ResponseEvent] = []
    for piece in body.pieces:
        events += pipeline.feed(piece)
    events += pipeline.end()
    return _ended(events)


def run_client(client: ChatClient) -> list[ResponseEvent]:
    return _ended(list(client.stream(_PROMPT)))


def run_sdk(client: openai.OpenAI) -> int:
    stream = client.chat.completions.create(model="m", messages=_MESSAGES, stream=True)
    count = 0
    for _chunk in stream:
        count += 1
    return count


def build_methods(body: Body, rig: "Rig") -> dict[str, Method]:
    """The timed rows, by name; the floor first."""
    methods: dict[str, Method] = {FLOOR: partial(run_floor, body)}
    methods.update({CORE.format(mode): partial(run_core, body, mode) for mode in MODES})
    methods[CLIENT] = partial(run_client, rig.ours)
    methods[SDK] = partial(run_sdk, rig.sdk)
    return methods


# --------------------------------------------------------------------------- checks


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(f"wrong events: {what}")


def _done_items(events: list[ResponseEvent]) -> list[Any]:
    return [event.item for event in events if type(event) is OutputItemDone]


def check_events(mode: StreamMode, events: list[ResponseEvent], body: Body) -> None:
    """The events carry exactly the body's text, reasoning and tool call."""
    items = _done_items(events)
    calls = [item for item in items if type(item) is FunctionCall]
    _check(len(calls) == 1, f"{mode}: one function call, got {len(calls)}")
    call = calls[0]
    _check(orjson.loads(call.arguments) == orjson.loads(body.arguments), f"{mode}: arguments")
    _check((call.name, call.call_id) == (body.tool_name, body.call_id), f"{mode}: call name/id")
    texts = [item.text for item in items if type(item) is Message]
    _check(texts == [body.content], f"{mode}: message text")
    reasoning = "".join(item.text for item in items if type(item) is Reasoning)
    _check(reasoning == body.reasoning, f"{mode}: reasoning text")
    if mode != "aggregated":
        deltas = "".join(e.delta for e in events if type(e) is OutputTextDelta)
        _check(deltas == body.content, f"{mode}: joined content deltas")
        thoughts = "".join(e.delta for e in events if type(e) is ReasoningContentDelta)
        _check(thoughts == body.reasoning, f"{mode}: joined reasoning deltas")
    completed = events[-1]
    _check(type(completed) is Completed, f"{mode}: last event")
    if type(completed) is Completed:
        _check(completed.finish_reason == "tool_calls", f"{mode}: finish reason")
        usage = completed.token_usage
        _check(usage is not None and usage.output_tokens == body.events, f"{mode}: usage")


def check_all(body: Body, rig: "Rig") -> None:
    """Each method's output, once per body and outside the timing."""
    for mode in MODES:
        check_events(mode, run_core(body, mode), body)
    check_events("streaming", run_client(rig.ours), body)
    chunks = run_sdk(rig.sdk)
    _check(chunks == body.events, f"SDK: {chunks} chunks for {body.events} events")


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Row:
    method: str
    seconds: float
    events_per_second: float
    x_floor: float
    sdk_speedup: float | None


def summarize(times: dict[str, list[float]], events: int) -> list[Row]:
    rows: list[Row] = []
    for name, seconds in times.items():
        median = statistics.median(seconds)
        # The SDK may have run in fewer (the first) rounds: the rounds both have are paired.
        speedup = None
        if name.startswith("ours"):
            speedup = median_ratio(times[SDK], seconds, strict=False)
        x_floor = median_ratio(seconds, times[FLOOR], strict=False)
        rows.append(Row(name, median, events / median, x_floor, speedup))
    return rows


# --------------------------------------------------------------------------- output


VERSIONS = ("pydantic", "pydantic-core", "orjson", "httpx", "openai", "httpx2", "jiter")


def print_table(body: Body, rows: list[Row], rounds: int, sdk_rounds: int) -> None:
    mean = len(body.data) / body.events
    sdk_note = "" if sdk_rounds == rounds else f"; SDK timed in {sdk_rounds} of them"
    print(
        f"\n### {body.events:,} events ({len(body.data) / 1e6:.2f} MB, {mean:.0f} B/event, ", end=""
    )
    print(f"{body.reasoning_events / body.events:.0%} reasoning, ", end="")
    print(f"{len(body.pieces):,} pieces of 1-4 KB): {rounds} rounds{sdk_note}\n")
    print("| method | median ms | events/s | time x floor | speed-up vs SDK |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        speedup = "" if row.sdk_speedup is None else f"{row.sdk_speedup:.1f}x"
        print(
            f"| {row.method} | {row.seconds * 1e3:,.1f} | {row.events_per_second:,.0f} "
            f"| {row.x_floor:.2f} | {speedup} |"
        )


def target_line(size: int, rows: list[Row]) -> tuple[str, bool]:
    streaming = next(row for row in rows if row.method == CORE.format("streaming"))
    speedup = streaming.sdk_speedup or 0.0
    floor_ok = streaming.x_floor <= STREAMING_FLOOR_TARGET
    sdk_ok = speedup >= SDK_SPEEDUP_TARGET
    line = (
        f"{size:,} events: core streaming {streaming.x_floor:.2f}x floor "
        f"(target ≤ {STREAMING_FLOOR_TARGET:g}x: {'PASS' if floor_ok else 'FAIL'}), "
        f"{speedup:.1f}x faster than the SDK "
        f"(target ≥ {SDK_SPEEDUP_TARGET:g}x: {'PASS' if sdk_ok else 'FAIL'})"
    )
    return line, floor_ok and sdk_ok


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--rounds", type=int, help="rounds at every size (default: 7/5/3)")
    parser.add_argument("--sdk-rounds", type=int, help="at most this many SDK rounds per size")
    parser.add_argument(
        "--reasoning",
        type=float,
        default=REASONING_SHARE,
        metavar="SHARE",
        help=f"the share of reasoning deltas in the body (default {REASONING_SHARE:g}, "
        f"at most {MAX_REASONING_SHARE:g})",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.reasoning <= MAX_REASONING_SHARE:
        parser.error(f"--reasoning must be between 0 and {MAX_REASONING_SHARE:g}")
    return args


def rounds_for(size: int, args: argparse.Namespace) -> tuple[int, int]:
    rounds = args.rounds or DEFAULT_ROUNDS.get(size, 3)
    return rounds, min(rounds, args.sdk_rounds or rounds)


@dataclass(frozen=True)
class Rig:
    """Both clients, built once, and the server that feeds them the current body."""

    server: Server
    ours: ChatClient
    sdk: openai.OpenAI

    @classmethod
    def build(cls) -> "Rig":
        server = Server()
        transport = httpx.MockTransport(server.httpx_handler)
        ours = ChatClient(ProviderSettings(), "m", transport=transport, mode="streaming")
        http = httpx2.Client(transport=httpx2.MockTransport(server.httpx2_handler))
        sdk = openai.OpenAI(api_key="x", base_url="http://test/v1", http_client=http)
        return cls(server, ours, sdk)

    def serve(self, body: Body) -> dict[str, Method]:
        """Serve `body` from now on, check every method on it, and return the methods."""
        self.server.pieces = body.pieces
        check_all(body, self)
        return build_methods(body, self)


def warm_up(rig: Rig) -> None:
    for method in rig.serve(generate_body(WARMUP_EVENTS, seed=SEED - 1)).values():
        method()


def bench_size(size: int, args: argparse.Namespace, rig: Rig) -> list[Row]:
    body = generate_body(size, reasoning_share=args.reasoning)
    methods = rig.serve(body)
    rounds, sdk_rounds = rounds_for(size, args)
    times = run_rounds(methods, rounds, limits={SDK: sdk_rounds})
    rows = summarize(times, body.events)
    print_table(body, rows, rounds, sdk_rounds)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    print_versions(VERSIONS)
    rig = Rig.build()
    warm_up(rig)
    print(LEGEND)
    lines = [target_line(size, bench_size(size, args, rig)) for size in args.sizes]
    print("\n## Targets: core streaming ≤ 5x the orjson floor and ≥ 20x faster than the SDK\n")
    for line, _ok in lines:
        print(f"- {line}")
    verdict = "all met" if all(ok for _line, ok in lines) else "NOT all met"
    print(f"\nTargets {verdict}. Total run time {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
