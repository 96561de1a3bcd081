"""The images layer: downloads from public hosts, the content-addressed cache and its limit, scores, tiles and sheets, the gallery. Private modules."""
