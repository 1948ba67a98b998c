"""Benchmarks. Performance is reported as ratios against the raw capacity of the same broker
and store measured in the same run (`bench.raw_capacity`), never as absolute timed tests."""
