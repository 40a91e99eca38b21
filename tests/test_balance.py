"""The shared connection counts that spread connections over `keycardd --processes N` (keycardd.balance)."""

from __future__ import annotations

import os

from keycardd.balance import ConnectionBalance


def test_only_a_process_ahead_of_the_least_loaded_by_more_than_one_waits() -> None:
    primary = ConnectionBalance.create(3)
    replicas = [ConnectionBalance(primary.fd, slot, 3) for slot in (1, 2)]
    for balance in (primary, *replicas):
        balance.accepting(True)
    try:
        primary.opened()
        assert not primary.should_wait()  # 1 against 0: within one
        primary.opened()
        assert primary.should_wait()  # 2 against 0
        assert not any(replica.should_wait() for replica in replicas)  # the least loaded never waits
        replicas[0].opened()
        replicas[1].opened()
        assert not primary.should_wait()  # 2 against 1
        primary.closed()
        primary.closed()
        replicas[1].opened()
        replicas[1].opened()
        assert replicas[1].should_wait() and not replicas[0].should_wait() and not primary.should_wait()
    finally:
        os.close(primary.fd)


def test_nobody_waits_for_a_process_that_is_not_accepting() -> None:
    """A replica still loading its policy, or stopping, must not hold the others back (connections would queue)."""
    primary = ConnectionBalance.create(2)
    replica = ConnectionBalance(primary.fd, 1, 2)
    try:
        primary.accepting(True)
        for _ in range(5):
            primary.opened()
        assert not primary.should_wait()  # the replica has not started accepting
        replica.accepting(True)
        assert primary.should_wait()  # 5 against 0
        replica.opened()
        replica.accepting(False)  # stopping: its connections may still close afterwards
        replica.closed()
        assert not primary.should_wait()
    finally:
        os.close(primary.fd)


def test_the_shared_file_is_unlinked_and_private_to_the_process_tree() -> None:
    balance = ConnectionBalance.create(2)
    try:
        assert os.fstat(balance.fd).st_nlink == 0  # nothing on disk to find or tamper with
    finally:
        os.close(balance.fd)
