"""The reimage budget's rows in `WardenSlots` against a real Azurite: holds, the line, the gate, pauses."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from shared.adapters.store import WardenStore
from shared.policy.blast_radius import Claim, Limits, Pause

SUB_1, SUB_2 = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOLD, TICKET = timedelta(hours=2), timedelta(minutes=30)
CLUSTER = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c"


def ask(store: WardenStore, holder: str, limits: Limits, now: datetime = T0, subscription: str = SUB_1):
    return store.take_reimage_turn(Claim(holder, subscription, CLUSTER, holder), limits, now, HOLD, TICKET)


def holders(store: WardenStore, now: datetime = T0) -> tuple[list[str], list[str]]:
    holds, line = store.reimage_claims(now)
    return sorted(c.holder for c in holds), [c.holder for c in line]


def test_the_fleet_budget_bounds_the_holds_and_a_holder_asking_again_keeps_its_own(store):
    limits = Limits(2, 5)
    assert [ask(store, h, limits).granted for h in ("r1", "r2", "r3")] == [True, True, False]
    assert ask(store, "r1", limits).granted, "a re-run keeps its hold"
    assert holders(store) == (["r1", "r2"], ["r3"])
    assert store.slot_holders("reimages", T0) == ["r1", "r2"], "the holds are slots like the run-command ones"


def test_the_subscription_budget_bounds_each_subscription_and_lets_others_pass(store):
    limits = Limits(5, 1)
    assert ask(store, "a1", limits).granted
    waiting = ask(store, "a2", limits)
    assert (waiting.granted, waiting.in_subscription, waiting.first_wait) == (False, 1, True)
    assert ask(store, "b1", limits, subscription=SUB_2).granted, "another subscription passes the waiter"


def test_freed_room_goes_to_the_oldest_waiter_even_when_a_newer_one_asks_first(store):
    limits = Limits(1, 5)
    assert ask(store, "r0", limits).granted
    for index, holder in enumerate(("r1", "r2", "r3")):
        turn = ask(store, holder, limits, T0 + timedelta(seconds=index + 1))
        assert (turn.granted, turn.ahead, turn.first_wait) == (False, index, True)
    store.release_reimage_hold("r0")
    later = T0 + timedelta(minutes=1)
    assert not ask(store, "r3", limits, later).granted
    again = ask(store, "r2", limits, later)
    assert (again.granted, again.first_wait, again.waited) == (False, False, True)
    assert ask(store, "r1", limits, later).granted
    assert holders(store, later) == (["r1"], ["r2", "r3"])
    store.release_reimage_hold("r1")
    assert not ask(store, "r3", limits, later).granted
    assert ask(store, "r2", limits, later).granted


def test_concurrent_askers_never_hold_more_than_the_budget(azurite, store):
    """Ten waiters ask at the same moment, round after round, each from its own client; holders
    give their room back after each round. Every round, the holds never exceed the budget."""
    limits, rounds, names = Limits(3, 3), 4, [f"r{i}" for i in range(10)]
    clients = [WardenStore(azurite, table_prefix=store.table_prefix, retry_total=0) for _ in names]
    granted_per_round: list[list[str]] = []
    try:
        for round_ in range(rounds):
            start, granted, lock = threading.Barrier(len(names)), [], threading.Lock()

            def asker(client: WardenStore, holder: str, at: datetime, start=start, granted=granted, lock=lock) -> None:
                start.wait()
                if ask(client, holder, limits, at).granted:
                    with lock:
                        granted.append(holder)

            at = T0 + timedelta(seconds=round_)
            threads = [threading.Thread(target=asker, args=(c, h, at)) for c, h in zip(clients, names, strict=True)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(granted) <= limits.fleet, f"round {round_}: {granted} all got a hold"
            assert sorted(granted) == holders(store, T0 + timedelta(seconds=round_))[0]
            granted_per_round.append(granted)
            for holder in granted:
                store.release_reimage_hold(holder)
    finally:
        for client in clients:
            client.close()
    assert any(granted_per_round), "nobody was ever let in"


def test_an_expired_hold_is_free_removed_by_the_next_start_and_cannot_be_renewed(store):
    limits = Limits(1, 1)
    assert ask(store, "dead", limits).granted
    assert store.renew_reimage_hold("dead", T0 + timedelta(minutes=30), HOLD), "renewing a live hold"
    after = T0 + HOLD + timedelta(minutes=1)
    assert not ask(store, "next", limits, T0 + timedelta(minutes=90)).granted, "the hold is still live"
    assert ask(store, "next", limits, after).granted, "an expired hold counts for nothing"
    assert not store.renew_reimage_hold("dead", after, HOLD), "its room was given away"
    assert holders(store, after) == (["next"], [])


def test_renewal_writes_only_once_half_the_hold_is_gone(store):
    assert ask(store, "r1", Limits(1, 1)).granted
    before = store.reimage_claims(T0)
    assert store.renew_reimage_hold("r1", T0 + timedelta(minutes=10), HOLD)
    assert store.reimage_claims(T0 + HOLD + timedelta(minutes=5)) == ([], []), "not renewed this early"
    assert store.renew_reimage_hold("r1", T0 + timedelta(minutes=70), HOLD)
    assert store.reimage_claims(T0 + HOLD + timedelta(minutes=5))[0] == before[0], "renewed past its first expiry"


def test_a_waiter_that_stops_asking_loses_its_place(store):
    limits = Limits(1, 1)
    assert ask(store, "r0", limits).granted
    assert not ask(store, "gone", limits).granted
    assert not ask(store, "stays", limits, T0 + timedelta(minutes=1)).granted
    store.release_reimage_hold("r0")
    later = T0 + TICKET + timedelta(minutes=1)
    assert ask(store, "stays", limits, T0 + timedelta(minutes=20)).granted is False, "the older waiter goes first"
    assert ask(store, "stays", limits, later).granted, "the waiter that stopped asking holds nobody back"
    comes_back = ask(store, "gone", limits, later)
    assert (comes_back.granted, comes_back.ahead) == (False, 0)
    assert holders(store, later) == (["stays"], ["gone"])


def test_leaving_the_line_takes_the_hold_and_the_ticket(store):
    limits = Limits(1, 1)
    assert ask(store, "r0", limits).granted and not ask(store, "r1", limits).granted
    store.leave_reimage_line("r0")
    store.leave_reimage_line("r1")
    store.leave_reimage_line("r1")
    assert holders(store) == ([], [])


def test_a_pause_is_kept_until_cleared_once(store):
    key = CLUSTER.lower()
    assert store.reimage_pause(key) is None and store.clear_reimage_pause(key) is None
    pause = Pause(CLUSTER, "np1", T0, "ReimageFailed", "node failed to boot", "https://op", "inst-1")
    store.pause_reimages(pause)
    assert store.reimage_pause(CLUSTER.upper().lower()) == pause
    assert store.clear_reimage_pause(key) == pause
    assert store.reimage_pause(key) is None and store.clear_reimage_pause(key) is None
