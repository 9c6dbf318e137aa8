"""One big SSE event arriving in many pieces: the decoder against the floor.

A single ``data:`` event of 20 MB (a huge tool-call argument, or a hostile stream), fed to
`SSEDecoder.decode_data` in pieces of 4 KB, as a network delivers it. The floor is what any
decoder must do at least: join the pieces and find the blank line that ends the event. Every
round runs both once, in rotated order; the figure is the median per-round ratio. A decoder
that searched its whole buffer per piece would be quadratic here (a 20 MB event took 16.8 s
before issue 13, 112 s to record at 50 MB).

    python benchmarks/sse_big_event.py [--megabytes N] [--piece BYTES] [--rounds N]
"""

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from _harness import median_ratio, print_versions, run_rounds  # noqa: E402

from llmx_replay import SSEDecoder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--megabytes", type=int, default=20)
    parser.add_argument("--piece", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    body = b"data: " + b"x" * (args.megabytes * 1_000_000) + b"\n\n"
    pieces = [body[start : start + args.piece] for start in range(0, len(body), args.piece)]

    def decoder() -> None:
        decoding = SSEDecoder()
        data = [item for piece in pieces for item in decoding.decode_data(piece)]
        assert len(data) == 1 and len(data[0]) == len(body) - 8

    def floor() -> None:
        joined = b"".join(pieces)
        assert joined.find(b"\n\n") == len(body) - 2

    print_versions(["llmx-replay"])
    print(f"one event of {len(body):,} bytes in {len(pieces):,} pieces of {args.piece:,} bytes")
    times = run_rounds({"decoder": decoder, "floor": floor}, args.rounds)
    for name, seconds in times.items():
        print(f"  {name}: median {statistics.median(seconds) * 1000:.1f} ms")
    print(f"decoder / floor: {median_ratio(times['decoder'], times['floor']):.1f}x")


if __name__ == "__main__":
    main()
