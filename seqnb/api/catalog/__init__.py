"""RunComfy's catalog: one model's entry and price, the disk cache, schema drift, and the bounded calls that read them. Private modules."""
