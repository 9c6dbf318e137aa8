"""Matching a request to a recording (issue 3, section 3): method, URL and the JSON body by
meaning, ignored paths, identical requests in recorded order, an explanation of a miss that
shows the closest recording and exactly where it differs, and an indexed lookup."""

import time

import orjson
import pytest

from llmx_replay import Absence, FieldDifference, NoMatchingInteraction
from llmx_replay.cassette import (
    BodyCanonicalizer,
    Interaction,
    InteractionIndex,
    RecordedRequest,
    RecordedResponse,
    RequestKey,
)
from llmx_replay.cassette._match import recorded_keys

CHAT_URL = "http://127.0.0.1:9/v1/chat/completions"
SSE_BODY = b'data: {"choices":[{"delta":{"content":"Bonjour"}}]}\n\ndata: [DONE]\n\n'


def chat(prompt: str, model: str = "gpt-test", **extra: object) -> dict[str, object]:
    return {
        "model": model,
        "stream": True,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": prompt},
        ],
        **extra,
    }


def chat_body(prompt: str, model: str = "gpt-test", **extra: object) -> bytes:
    return orjson.dumps(chat(prompt, model, **extra))


def interaction(
    prompt: str,
    body: bytes = SSE_BODY,
    status: int = 200,
    *,
    method: str = "POST",
    uri: str = CHAT_URL,
    request_body: bytes | None = None,
    model: str = "gpt-test",
) -> Interaction:
    return Interaction(
        request=RecordedRequest(
            method=method,
            uri=uri,
            headers=[("content-type", "application/json")],
            body=chat_body(prompt, model) if request_body is None else request_body,
        ),
        response=RecordedResponse(status=status, body=body),
    )


def key(
    body: bytes | None,
    *,
    method: str = "POST",
    url: str = CHAT_URL,
    ignore: list[str] | None = None,
) -> RequestKey:
    return BodyCanonicalizer(ignore or []).key(method, url, body)


def index_of(*interactions: Interaction, ignore: list[str] | None = None) -> InteractionIndex:
    return InteractionIndex(list(interactions), BodyCanonicalizer(ignore or []))


def take(
    index: InteractionIndex, body: bytes | None, method: str = "POST", url: str = CHAT_URL
) -> int | None:
    return index.take(BodyCanonicalizer().key(method, url, body))


# --------------------------------------------------------------------------------------------
# BodyCanonicalizer
# --------------------------------------------------------------------------------------------


def test_key_ignores_json_key_order_and_whitespace() -> None:
    compact = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}'
    spread = (
        b'{\n  "stream" : true,\n\t"messages": [ {"content": "hi", "role": "user"} ],\n'
        b' "model": "m"\n}\n'
    )

    assert key(compact) == key(spread)


@pytest.mark.parametrize(
    "other",
    [
        b'{"model":"m","messages":[{"role":"user","content":"hi!"}],"stream":true}',
        b'{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":false}',
        b'{"model":"m","messages":[{"role":"user","content":"hi"}]}',
        b'{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"n":1}',
        b'{"model":"m","messages":[{"content":"hi","role":"user"},{"role":"user","content":"hi"}],"stream":true}',
        b'{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":1}',
    ],
)
def test_key_differs_for_a_different_value(other: bytes) -> None:
    base = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}'

    assert key(base) != key(other)


def test_key_compares_numbers_by_type_and_value() -> None:
    assert key(b'{"temperature": 1}') != key(b'{"temperature": 1.5}')
    assert key(b'{"a": [1, 2]}') != key(b'{"a": [2, 1]}')


def test_key_ignores_the_configured_paths() -> None:
    ignore = ["user", "metadata.trace_id", "messages[*].id"]
    recorded = orjson.dumps(
        {
            "model": "m",
            "user": "alice",
            "metadata": {"trace_id": "t-1", "team": "core"},
            "messages": [
                {"id": "a1", "role": "system", "content": "terse"},
                {"id": "a2", "role": "user", "content": "hi"},
            ],
        }
    )
    requested = orjson.dumps(
        {
            "model": "m",
            "user": "bob",
            "metadata": {"trace_id": "t-2", "team": "core"},
            "messages": [
                {"id": "b1", "role": "system", "content": "terse"},
                {"id": "b2", "role": "user", "content": "hi"},
            ],
        }
    )
    without = orjson.dumps(
        {
            "model": "m",
            "metadata": {"team": "core"},
            "messages": [
                {"role": "system", "content": "terse"},
                {"role": "user", "content": "hi"},
            ],
        }
    )

    assert key(recorded, ignore=ignore) == key(requested, ignore=ignore)
    assert key(recorded, ignore=ignore) == key(without, ignore=ignore)
    assert key(recorded) != key(requested)


def test_ignored_paths_leave_the_rest_compared() -> None:
    ignore = ["user", "metadata.trace_id", "messages[*].id"]
    one = orjson.dumps({"user": "a", "metadata": {"trace_id": "1", "team": "core"}})
    other_team = orjson.dumps({"user": "a", "metadata": {"trace_id": "1", "team": "ops"}})
    one_message = orjson.dumps({"messages": [{"id": "1", "content": "hi"}]})
    other_message = orjson.dumps({"messages": [{"id": "1", "content": "ho"}]})

    assert key(one, ignore=ignore) != key(other_team, ignore=ignore)
    assert key(one_message, ignore=ignore) != key(other_message, ignore=ignore)


def test_non_json_bodies_compare_byte_for_byte() -> None:
    assert key(b"a=1&b=2") == key(b"a=1&b=2")
    assert key(b"a=1&b=2") != key(b"b=2&a=1")
    assert key(b"hello world") != key(b"hello  world")
    assert key(b"\xff\xfe binary") != key(b"\xff\xfe binarY")
    assert key(b"{not json") != key(b"{not  json")


@pytest.mark.parametrize(
    ("recorded", "requested"),
    [
        pytest.param(f"{CHAT_URL}#part", CHAT_URL, id="fragment"),
        pytest.param(f"{CHAT_URL}?a=1&b=2", f"{CHAT_URL}?b=2&a=1", id="query-order"),
        pytest.param(
            "http://API.Example.TEST/v1/chat/completions",
            "http://api.example.test/v1/chat/completions",
            id="host-case",
        ),
    ],
)
def test_key_normalizes_the_url(recorded: str, requested: str) -> None:
    body = chat_body("hi")

    assert key(body, url=recorded) == key(body, url=requested)


@pytest.mark.parametrize(
    ("recorded", "requested"),
    [
        pytest.param(f"{CHAT_URL}?a=1", f"{CHAT_URL}?a=2", id="query-value"),
        pytest.param(CHAT_URL, CHAT_URL.replace("/v1/", "/v2/"), id="path"),
        pytest.param(CHAT_URL, CHAT_URL.replace("/chat/", "/Chat/"), id="path-case"),
        pytest.param(CHAT_URL, CHAT_URL.replace(":9", ":10"), id="port"),
    ],
)
def test_key_keeps_what_makes_urls_different(recorded: str, requested: str) -> None:
    body = chat_body("hi")

    assert key(body, url=recorded) != key(body, url=requested)


def test_key_compares_the_method_in_any_case() -> None:
    assert key(None, method="get") == key(None, method="GET")
    assert key(None, method="GET") != key(None, method="POST")


# --------------------------------------------------------------------------------------------
# InteractionIndex
# --------------------------------------------------------------------------------------------


def test_identical_requests_are_answered_in_recorded_order() -> None:
    index = index_of(
        interaction("Say hello", body=b'{"error": "rate limited"}', status=429),
        interaction("Something else"),
        interaction("Say hello", status=200),
    )
    request = chat_body("Say hello")

    assert take(index, request) == 0
    assert take(index, request) == 2
    assert take(index, request) is None


def test_a_retry_is_served_429_then_200() -> None:
    recorded = [
        interaction("Say hello", body=b'{"error": "rate limited"}', status=429),
        interaction("Say hello", status=200),
    ]
    index = index_of(*recorded)
    # The retried request is the same request, sent with another key order and spacing.
    retried = orjson.dumps(chat("Say hello"), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)

    statuses: list[int | None] = []
    for body in [chat_body("Say hello"), retried, chat_body("Say hello")]:
        position = take(index, body)
        statuses.append(None if position is None else recorded[position].response.status)

    assert statuses == [429, 200, None]


def test_unplayed_lists_what_was_never_taken() -> None:
    index = index_of(interaction("one"), interaction("two"), interaction("three"))
    assert index.unplayed() == [0, 1, 2]

    assert take(index, chat_body("two")) == 1

    assert index.unplayed() == [0, 2]
    assert take(index, chat_body("three")) == 2
    assert take(index, chat_body("one")) == 0
    assert index.unplayed() == []


def test_a_longer_prompt_never_gets_a_shorter_prompts_answer() -> None:
    index = index_of(interaction("Say hello"))

    assert take(index, chat_body("Say hello in French")) is None
    assert take(index, chat_body("Say")) is None
    assert index.unplayed() == [0]


def test_two_different_prompts_each_get_their_own_answer() -> None:
    index = index_of(interaction("Say hello"), interaction("Say hello in French"))

    assert take(index, chat_body("Say hello in French")) == 1
    assert take(index, chat_body("Say hello")) == 0


def test_a_different_model_or_url_or_method_does_not_match() -> None:
    index = index_of(interaction("Say hello"))

    assert take(index, chat_body("Say hello", model="other")) is None
    assert take(index, chat_body("Say hello"), url=CHAT_URL.replace("/v1/", "/v2/")) is None
    assert take(index, chat_body("Say hello"), method="PUT") is None
    assert take(index, chat_body("Say hello")) == 0


def test_indexes_sharing_recorded_keys_each_play_their_own() -> None:
    recorded = [interaction("Say hello"), interaction("Say hello")]
    first = index_of(*recorded)
    second = InteractionIndex(recorded, BodyCanonicalizer(), keys=first.keys)

    assert take(first, chat_body("Say hello")) == 0
    assert take(second, chat_body("Say hello")) == 0
    assert (first.unplayed(), second.unplayed()) == ([1], [1])
    assert second.has(key(chat_body("Say hello")))
    assert take(first, chat_body("Say hello")) == 1
    assert not first.has(key(chat_body("Say hello")))


def test_recorded_keys_are_the_canonicalizers_with_urls_in_the_url_form() -> None:
    recorded = [interaction("one"), interaction("two", uri=CHAT_URL + "?session=1")]

    def without_query(url: str) -> str:
        return url.split("?")[0]

    keys = recorded_keys(recorded, BodyCanonicalizer(), without_query)

    assert keys == {key(chat_body("one")): (0,), key(chat_body("two")): (1,)}


def test_ignored_paths_apply_to_the_index() -> None:
    index = index_of(interaction("hi", request_body=chat_body("hi", user="alice")), ignore=["user"])

    assert (
        index.take(BodyCanonicalizer(["user"]).key("POST", CHAT_URL, chat_body("hi", user="bob")))
        == 0
    )


# --------------------------------------------------------------------------------------------
# closest: the data of a miss, and its explanation
# --------------------------------------------------------------------------------------------


def miss_of(index: InteractionIndex, method: str, url: str, body: bytes) -> NoMatchingInteraction:
    return index.miss("c.yaml", method, url, body)


def test_explain_miss_names_the_closest_interaction_and_the_differing_path() -> None:
    index = index_of(
        interaction("Tell me a joke", model="other-model"),
        interaction("Say hello"),
        interaction("Write a poem about the sea", model="other-model"),
    )

    miss = miss_of(index, "POST", CHAT_URL, chat_body("Say hello in French"))
    message = miss.explanation

    assert miss.closest == 1
    assert miss.differences == (
        FieldDifference("request.body.messages[1].content", "Say hello", "Say hello in French"),
    )
    assert "interaction 1" in message
    assert (
        'request.body.messages[1].content: recorded "Say hello", requested "Say hello in French"'
        in message
    )
    assert "model" not in message
    assert "already played" not in message


def test_explain_miss_names_a_different_method() -> None:
    index = index_of(interaction("Say hello"))

    miss = miss_of(index, "GET", CHAT_URL, chat_body("Say hello"))
    message = miss.explanation

    assert "interaction 0" in message
    assert 'request.method: recorded "POST", requested "GET"' in message
    assert "request.body" not in message


def test_explain_miss_names_a_different_url() -> None:
    index = index_of(interaction("Say hello"))
    other = "http://127.0.0.1:9/v2/chat/completions"

    miss = miss_of(index, "POST", other, chat_body("Say hello"))
    message = miss.explanation

    assert "interaction 0" in message
    assert f'request.url: recorded "{CHAT_URL}", requested "{other}"' in message
    assert "request.body" not in message


def test_explain_miss_names_an_added_field() -> None:
    index = index_of(interaction("Say hello"))

    miss = miss_of(index, "POST", CHAT_URL, chat_body("Say hello", temperature=0.5))
    message = miss.explanation

    assert miss.differences == (FieldDifference("request.body.temperature", Absence.ABSENT, 0.5),)
    assert "request.body.temperature: recorded (absent), requested 0.5" in message


def test_explain_miss_says_already_played_when_the_match_was_used_up() -> None:
    index = index_of(interaction("Say hello"), interaction("Other"))
    assert take(index, chat_body("Say hello")) == 0
    assert take(index, chat_body("Say hello")) is None

    miss = miss_of(index, "POST", CHAT_URL, chat_body("Say hello"))
    message = miss.explanation

    assert (miss.closest, miss.differences) == (0, ())
    assert "interaction 0" in message
    assert "already played" in message


def test_explain_miss_does_not_call_a_different_non_json_body_already_played() -> None:
    index = index_of(interaction("x", request_body=b"name=alice&text=hello"))
    requested = b"name=alice&text=goodbye"
    assert take(index, requested) is None

    miss = miss_of(index, "POST", CHAT_URL, requested)
    message = miss.explanation

    assert "already played" not in message
    assert "request.body" in message


def test_explain_miss_on_an_empty_cassette() -> None:
    miss = miss_of(index_of(), "POST", CHAT_URL, chat_body("hi"))

    assert miss.closest is None
    assert "no interaction" in miss.explanation


# --------------------------------------------------------------------------------------------
# Indexed lookup
# --------------------------------------------------------------------------------------------


def large_body(number: int) -> bytes:
    history = [
        {"role": "user" if turn % 2 == 0 else "assistant", "content": f"turn {turn} " + "x" * 150}
        for turn in range(10)
    ]
    return orjson.dumps(
        {
            "model": "gpt-test",
            "stream": True,
            "messages": [*history, {"role": "user", "content": f"question number {number}"}],
        }
    )


@pytest.mark.timing
def test_lookup_cost_does_not_grow_with_the_cassette() -> None:
    """Real time: 1,000 lookups in a cassette of 1,000 large interactions take well under a
    second; a lookup that re-read the cassette would take minutes. The bound only keeps a
    loaded machine from failing it (`test_lookup_does_not_scan_the_recorded_interactions`
    checks the same without a clock)."""
    count = 1_000
    bodies = [large_body(number) for number in range(count)]
    assert all(1_800 <= len(body) <= 2_400 for body in bodies)
    index = index_of(*(interaction("", request_body=body) for body in bodies))
    canonicalizer = BodyCanonicalizer()
    # Requests arrive re-serialized (another key order, indented), in another order.
    requests = [
        orjson.dumps(orjson.loads(bodies[n]), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        for n in reversed(range(count))
    ]

    start = time.perf_counter()
    found = [index.take(canonicalizer.key("POST", CHAT_URL, body)) for body in requests]
    elapsed = time.perf_counter() - start

    assert found == list(reversed(range(count)))
    assert index.unplayed() == []
    assert elapsed < 10.0, f"1,000 lookups took {elapsed:.3f} s"


def test_lookup_does_not_scan_the_recorded_interactions() -> None:
    """The index answers from the keys it built: with the interactions themselves gone,
    lookups still find their positions (a scan over them would find nothing)."""
    interactions = [interaction("", request_body=large_body(number)) for number in range(50)]
    index = InteractionIndex(interactions, BodyCanonicalizer())
    interactions.clear()
    canonicalizer = BodyCanonicalizer()

    found = [
        index.take(canonicalizer.key("POST", CHAT_URL, large_body(number))) for number in range(50)
    ]

    assert found == list(range(50))
