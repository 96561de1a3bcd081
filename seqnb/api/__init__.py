"""The API layer: RunComfy's Model API on the wire (auth, which backend, the transport, answers read, the catalog, the balance). Private modules."""
