"""The test harness without pytest: a test's cassette session, and playback of recorded
responses through the protocol."""
