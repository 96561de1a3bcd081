"""The model layer: what may be asked of each model, validated and priced. Pure: no I/O. Private modules; the public names are in ``seqnb``."""
