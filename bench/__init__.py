"""kubesync's benchmarks: kubesync against a raw baseline and its peers, side by side.

``python -m bench`` starts a local cluster, seeds it and runs every workload; see
``bench/README.md``. Benchmarks report ratios; they never assert on time.
"""
