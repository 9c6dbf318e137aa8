"""The test harness without pytest.

It holds a test's cassette session, and playback of recorded responses through the protocol.
"""
