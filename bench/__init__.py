"""eventpipe benchmarks (`make bench`, `python -m bench`): measured ratios against in-process baselines.

Each benchmark runs the real ingest code and a naive baseline in the same process (or in fresh
subprocesses where the measurement needs one), reports the median of several runs with the spread,
and compares the result with the goal from issue 6. Benchmarks report; tests never assert on time.
"""
