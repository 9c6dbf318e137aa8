"""The Chat Completions protocol without I/O.

It covers request building, SSE decoding, the chunk processor, the pipeline that composes
them, the aggregator, the retry decisions, and telling another API's wire format from it.

Nothing here imports httpx: bytes go in, events come out, and the client (`ChatClient`)
is the one place where this protocol meets the network.
"""
