"""The reimage line: who may start now under the fleet and per-subscription budgets."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.config import Settings
from shared.core.errors import ConfigError
from shared.policy.blast_radius import Claim, Limits, Pause, Turn, let_in, turn_of, waiting_reason

A, B = "sub-a", "sub-b"
SUB = "3f2c8a51-6b0e-4d7a-9c21-5e8f0a1b2c3d"


def claims(*spec: str) -> list[Claim]:
    """`"a1"` is holder a1 in subscription sub-a."""
    return [Claim(name, f"sub-{name[0]}") for name in spec]


@pytest.mark.parametrize(
    ("holds", "line", "limits", "let"),
    [
        ([], ["a1", "b1", "c1"], Limits(2, 1), ["a1", "b1"]),
        (["a0"], ["a1", "b1", "c1"], Limits(2, 1), ["b1"]),
        (["a0"], ["a1", "a2"], Limits(5, 1), []),
        (["a0"], ["a1", "b1", "b2", "c1"], Limits(5, 1), ["b1", "c1"]),
        (["a0", "b0"], ["c1"], Limits(2, 1), []),
        ([], ["a1", "a2", "a3"], Limits(2, 2), ["a1", "a2"]),
        ([], ["a1", "b1"], Limits(1, 5), ["a1"]),
    ],
    ids=[
        "fleet-of-two-takes-the-two-oldest-of-different-subscriptions",
        "a-full-subscription-lets-the-next-pass",
        "within-a-subscription-nobody-passes",
        "each-subscription-its-oldest",
        "a-full-fleet-stops-the-line",
        "two-per-subscription",
        "fleet-of-one-takes-the-oldest-only",
    ],
)
def test_let_in_goes_down_the_line_in_order(holds, line, limits, let):
    assert [c.holder for c in let_in(claims(*holds), claims(*line), limits)] == let


def test_subscriptions_compare_case_insensitively():
    holds = [Claim("x", "SUB-A")]
    assert let_in(holds, [Claim("y", "sub-a")], Limits(5, 1)) == []


def test_a_turn_says_how_the_budgets_stand_and_why_it_waits():
    turn = turn_of(Claim("a2", A), claims("a0"), claims("a1", "a2"), Limits(2, 1), first_wait=True)
    assert turn == Turn(False, in_flight=1, in_subscription=1, ahead=1, first_wait=True)
    reason = waiting_reason(turn, Limits(2, 1), A)
    assert reason == (
        "reimage budget: 1 of 1 reimages in flight in subscription sub-a "
        "(WARDEN_MAX_REIMAGES_PER_SUBSCRIPTION); 1 pool ahead in line"
    )
    full = waiting_reason(Turn(False, in_flight=2, in_subscription=0), Limits(2, 1), B)
    assert full == "reimage budget: 2 of 2 reimages in flight across the fleet (WARDEN_MAX_REIMAGES)"
    behind = waiting_reason(Turn(False, in_flight=0, ahead=2), Limits(1, 1), B)
    assert behind == "reimage budget: pools that began to wait earlier go first; 2 pools ahead in line"


def test_a_pause_says_how_to_resume():
    pause = Pause(
        "/subscriptions/s/resourceGroups/rg/providers/x/managedClusters/c",
        "np1",
        datetime(2026, 11, 24, 12, 5, tzinfo=UTC),
    )
    assert pause.reason() == (
        "reimages of this cluster are paused after np1's reimage failed at 2026-11-24T12:05:00Z: "
        "python -m shared resume --cluster /subscriptions/s/resourceGroups/rg/providers/x/managedClusters/c"
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, (2, 1)),
        ({"WARDEN_MAX_REIMAGES": "5", "WARDEN_MAX_REIMAGES_PER_SUBSCRIPTION": "50"}, (5, 50)),
    ],
    ids=["defaults", "set"],
)
def test_the_budgets_are_read_from_the_settings(env, expected):
    settings = Settings.from_env({"WARDEN_SUBSCRIPTIONS": SUB, **env})
    assert (settings.max_reimages, settings.max_reimages_per_subscription) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WARDEN_MAX_REIMAGES", "0"),
        ("WARDEN_MAX_REIMAGES", "51"),
        ("WARDEN_MAX_REIMAGES_PER_SUBSCRIPTION", "-1"),
        ("WARDEN_MAX_REIMAGES_PER_SUBSCRIPTION", "two"),
    ],
    ids=["fleet-zero", "fleet-too-many", "subscription-negative", "subscription-not-a-number"],
)
def test_a_budget_out_of_bounds_is_refused_naming_the_setting(name, value):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"WARDEN_SUBSCRIPTIONS": SUB, name: value})
    assert str(refused.value) == f"{name} is {value!r}; expected a whole number of reimages from 1 to 50"
