"""Hostile cassettes against `llmx-replay play`: what a careful user's CI would throw at it.

Each case is a real cassette of the corpus, or a bundled one, mutated one way: bytes flipped,
cut short, a line's indentation changed, a number made huge or negative, a status made
impossible, an alias bomb or a compression bomb put in its place. Each runs in a fresh
`llmx-replay play` process under a time limit (`--timeout`, 20 s) and an address-space limit
(`--memory`, 2 GiB), and is classified:

* ``ok``: played (exit 0);
* ``clear error``: refused with exit 2 and one ``llmx-replay: error:`` line naming the file;
* ``traceback``: anything on standard error with a Python traceback;
* ``hang``: killed at the time limit;
* ``crash``: any other ending (a signal, a MemoryError, another exit status).

The figures: the count of each, the slowest run, and the largest peak memory (RSS) of a run.

    LLMX_REPLAY_CORPUS=../shared/corpus python benchmarks/fuzz_cassettes.py [--cases N]
        [--seed S] [--timeout SECONDS] [--memory MIB] [--show KIND]
"""

import argparse
import base64
import gzip
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

Mutation = Callable[[bytes, random.Random], bytes]


def flip_bytes(data: bytes, rng: random.Random) -> bytes:
    mutable = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        mutable[rng.randrange(len(mutable))] = rng.randrange(256)
    return bytes(mutable)


def cut_short(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data))]


def reindent_a_line(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    at = rng.randrange(len(lines))
    if rng.random() < 0.5:
        lines[at] = b" " * rng.randint(1, 6) + lines[at]
    else:
        lines[at] = lines[at].lstrip(b" ")
    return b"\n".join(lines)


def extreme_number(data: bytes, rng: random.Random) -> bytes:
    numbers = list(re.finditer(rb"(?<=: )-?\d+(\.\d+)?(?=\s)", data))
    if not numbers:
        return flip_bytes(data, rng)
    found = rng.choice(numbers)
    value = rng.choice([b"1e300", b"-1", b"1e11", b"0", b"99999999999999999999999999999", b".nan"])
    return data[: found.start()] + value + data[found.end() :]


def impossible_status(data: bytes, rng: random.Random) -> bytes:
    value = rng.choice([b"0", b"-1", b"600", b"1000000000000000000000000000000"])
    return re.sub(rb"code: \d+", b"code: " + value, data, count=1)


def deep_nesting(data: bytes, rng: random.Random) -> bytes:
    depth = rng.choice([100, 300, 1000])
    return (
        b"interactions:\n- request: {method: POST, uri: 'http://x/v1/chat/completions', "
        b"parsed_body: " + b"[" * depth + b"]" * depth + b"}\n"
        b"  response: {status: {code: 200, message: OK}}\n"
    )


def alias_bomb(data: bytes, rng: random.Random) -> bytes:
    levels = "abcdefghi"[: rng.randint(6, 9)]
    lines = []
    for index, name in enumerate(levels):
        value = f"*{levels[index - 1]}" if index else '"lol"'
        lines.append(f"{name}: &{name} [{', '.join([value] * 9)}]")
    last = levels[-1]
    lines.append(
        "interactions:\n"
        f"- request: {{method: POST, uri: 'http://x/v1/chat/completions', parsed_body: *{last}}}\n"
        f"  response: {{status: {{code: 200, message: *{last}}}, body: {{string: x}}}}"
    )
    return ("\n".join(lines) + "\n").encode()


def compression_bomb(data: bytes, rng: random.Random) -> bytes:
    inflated = rng.choice([10, 100, 1000]) * 1_000_000
    bomb = base64.b64encode(gzip.compress(b"\0" * inflated, compresslevel=9)).decode()
    return (
        "interactions:\n"
        "- request: {method: POST, uri: 'http://x/v1/chat/completions'}\n"
        "  response:\n"
        "    status: {code: 200, message: OK}\n"
        "    headers: {Content-Encoding: [gzip]}\n"
        f"    body: {{string: !binary '{bomb}'}}\n"
    ).encode()


MUTATIONS: dict[str, Mutation] = {
    "flip bytes": flip_bytes,
    "cut short": cut_short,
    "reindent a line": reindent_a_line,
    "extreme number": extreme_number,
    "impossible status": impossible_status,
    "deep nesting": deep_nesting,
    "alias bomb": alias_bomb,
    "compression bomb": compression_bomb,
}


def sources() -> list[Path]:
    corpus = os.environ.get("LLMX_REPLAY_CORPUS")
    found = sorted((ROOT / "cassettes").rglob("*.yaml"))
    if corpus:
        found += sorted(p for p in Path(corpus).rglob("*") if p.suffix in (".yaml", ".yml"))
    return found


def classify(returncode: int | None, stderr: str, path: Path) -> str:
    if returncode is None:
        return "hang"
    if "Traceback" in stderr:
        return "traceback"
    if returncode == 0:
        return "ok"
    lines = stderr.strip().splitlines()
    if returncode == 2 and len(lines) == 1 and lines[0].startswith("llmx-replay: error:"):
        return "clear error"
    return "crash"


def run_case(path: Path, timeout: float, memory: int) -> tuple[str, float, int, str]:
    """(kind, seconds, peak RSS in KiB, standard error) of `play` on `path`."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "llmx_replay", "play", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=limit,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
        returncode: int | None = process.returncode
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        returncode = None
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    text = stderr.decode(errors="replace")
    return classify(returncode, text, path), seconds, peak, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--memory", type=int, default=2048, help="MiB a run may map")
    parser.add_argument("--show", default="", help="print the cases of this kind (traceback...)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    originals = sources()
    kinds: Counter[str] = Counter()
    by_mutation: dict[str, Counter[str]] = {name: Counter() for name in MUTATIONS}
    slowest = (0.0, "")
    peak = 0
    with tempfile.TemporaryDirectory(prefix="llmx-fuzz-") as scratch:
        for number in range(args.cases):
            source = rng.choice(originals)
            name = rng.choice(list(MUTATIONS))
            path = Path(scratch) / f"case-{number}.yaml"
            path.write_bytes(MUTATIONS[name](source.read_bytes(), rng))
            kind, seconds, peak, stderr = run_case(path, args.timeout, args.memory * 1024 * 1024)
            kinds[kind] += 1
            by_mutation[name][kind] += 1
            if seconds > slowest[0]:
                slowest = (seconds, f"{name} of {source.name}")
            if kind == args.show:
                print(f"--- {kind}: {name} of {source}\n{stderr.strip()[-2000:]}")
    print(f"{args.cases} cases from {len(originals)} cassettes, seed {args.seed}")
    for kind in ("ok", "clear error", "traceback", "hang", "crash"):
        print(f"  {kind}: {kinds[kind]}")
    for name, counted in by_mutation.items():
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counted.items())))
    print(f"slowest run: {slowest[0]:.2f} s ({slowest[1]})")
    print(f"largest peak memory of a run: {peak / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
