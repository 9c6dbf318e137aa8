from llmx_replay.cli import main

main()
