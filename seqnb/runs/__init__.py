"""The runs layer: a run's state as an I/O-free state machine (``RunCore``), the pace of polls, and the poller that watches every run. Private modules."""
