"""The client layer: the async core and its jobs (submit, money, cancel, adopt, sweeps), the sync facade ``Client`` and its ``Run``. Private modules."""
