"""Benchmarks of the whole warden on the local Azure: ARM requests, orchestration history and
event-storm cost per remediated pool, `plan` over many clusters, and a fleet verification against
its ideal schedule. Figures and ratios only, never pass/fail.

    python -m bench                # aligned tables per section, then one JSON line
    python -m bench --json         # the JSON line only
    python -m bench --only verify  # section 5 (minutes; not in the default run)

See bench/README.md for what each figure means.
"""
