"""Benchmarks of the whole warden on the local Azure: ARM requests, orchestration history and
event-storm cost per remediated pool. Figures and ratios only, never pass/fail.

    python -m bench            # aligned tables per section, then one JSON line
    python -m bench --json     # the JSON line only

See bench/README.md for what each figure means.
"""
