"""The goals table of `python -m bench`: each figure against its floor, met or missed."""

import pytest

from bench.goals import plan_floor, rows


def scenario(key: str, reads_per_pool: float) -> dict:
    return {"scenario": key, "reads_per_pool": reads_per_pool}


def test_plan_floor_is_the_cluster_list_then_the_pool_lists_workers_at_a_time():
    assert plan_floor(200, 8, 0.05) == pytest.approx(26 * 0.05)
    assert plan_floor(8, 8, 0.1) == pytest.approx(0.2)


def test_ratios_are_compared_with_each_goal_and_a_throughput_must_reach_its_bound():
    figures = {
        "scenarios": [scenario("localuser", 6), scenario("cluster-x10", 5.4)],
        "admission": {
            "events": 20,
            "kept": 1,
            "json_us": 8,
            "admission_us": 20,
            "kept_json_us": 8,
            "kept_admission_us": 40,
        },
        "duplicate": {"ms": 4, "floor_ms": 2.5},
    }
    by_figure = {g.figure.split(" (")[0].split(",")[0]: g for g in rows(figures)}
    assert by_figure["ARM reads per remediated pool"].ratio == pytest.approx(6 / 5)
    assert by_figure["ARM reads per remediated pool"].met  # x1.2 is within <= x1.2
    assert not by_figure["ARM reads per pool"].met  # 5.4 / 4.1 = x1.32 > x1.3
    assert not by_figure["event admission"].met  # 8 / 20 = x0.4 < x0.5
    assert by_figure["a duplicate event in a storm"].met
    assert len(by_figure) == 4, "sections not measured in the run give no row"
