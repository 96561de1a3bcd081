"""The runs layer: one request's life as a state machine, the pace of polls, and the poller that watches every run. Private modules."""
