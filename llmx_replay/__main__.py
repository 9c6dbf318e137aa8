"""`python -m llmx_replay`: the `llmx-replay` command line."""

from llmx_replay.cli import main

main()
