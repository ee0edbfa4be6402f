"""Claims shared by a process and its forked child (`recording.claims.Claims`): each item is taken once, whoever
asks first, and a child that dies holding the lock does not stop the parent."""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time

import pytest

from rezgen.site.claims import Claims


@pytest.fixture
def claims_of():
    made: list[Claims] = []

    def make(count: int) -> Claims:
        made.append(Claims(count))
        return made[-1]

    yield make
    for claims in made:
        claims.close()


def forked(child) -> int:
    """Run `child()` in a forked process and wait for it; its exit status."""
    pid = os.fork()
    if pid == 0:
        try:
            child()
        finally:
            os._exit(0)
    return os.waitpid(pid, 0)[1]


def test_an_item_is_taken_once_by_whoever_asks_first(claims_of):
    claims = claims_of(3)
    assert claims.take(1, 2) and not claims.take(1, 1) and not claims.take(1, 2)
    assert claims.take(0, 1)
    assert claims.taken_by(1) == [0] and claims.taken_by(2) == [1]


def test_what_a_forked_child_takes_the_parent_cannot(claims_of):
    claims = claims_of(100)
    forked(lambda: [claims.take(index, 1) for index in range(0, 100, 2)])
    assert [claims.take(index, 2) for index in range(4)] == [False, True, False, True]
    assert claims.taken_by(1) == list(range(0, 100, 2))


def test_threads_and_a_child_racing_for_every_item_take_each_exactly_once(claims_of):
    claims = claims_of(3000)
    got: list[list[int]] = [[], []]

    def race(who: int) -> None:
        for index in range(3000):
            if claims.take(index, who) and who > 1:
                got[who - 2].append(index)
            time.sleep(0.0001)  # as between a build's claims: the lock is not fair to a waiter

    child = os.fork()  # first: a child must not be forked while a thread holds a lock
    if child == 0:
        try:
            race(1)
        finally:
            os._exit(0)
    threads = [threading.Thread(target=race, args=(who,)) for who in (2, 3)]
    for thread in threads:
        thread.start()
    os.waitpid(child, 0)
    for thread in threads:
        thread.join()
    assert claims.taken_by(1) and got[0] + got[1], "no race"
    taken = sorted(claims.taken_by(1) + got[0] + got[1])
    assert taken == list(range(3000))
    assert sorted(claims.taken_by(2)) == sorted(got[0]) and sorted(claims.taken_by(3)) == sorted(got[1])


def test_a_child_killed_while_holding_the_lock_does_not_block_the_parent(claims_of):
    claims = claims_of(1)

    def die_locked() -> None:
        fcntl.lockf(claims._file, fcntl.LOCK_EX)
        os.kill(os.getpid(), signal.SIGKILL)

    forked(die_locked)
    done = threading.Event()
    threading.Thread(target=lambda: (claims.take(0, 2), done.set()), daemon=True).start()
    assert done.wait(5), "the parent is still waiting for the dead child's lock"
    assert claims.taken_by(2) == [0]


def test_closed_claims_take_nothing(claims_of):
    claims = claims_of(2)
    claims.close()
    assert not claims.take(0, 1)
