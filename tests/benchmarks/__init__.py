"""`make bench`: cold starts, upload throughput and memory, preview latency."""
