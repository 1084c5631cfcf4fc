"""Feed ingestion: fetch, parse, normalise, dedup, relevance gate."""
