"""The run's shared state behaves the same on SQLite and on PostgreSQL: claims, task leases, the
call cache, and their use by several processes at once (every test runs on both stores)."""

from __future__ import annotations

import multiprocessing
import threading

from agents.backends.cache import CallCache
from agents.backends.chat import ChatResult, Usage
from schemas.run_claims import RunClaims
from schemas.task_leases import TaskLeases


def test_a_url_or_image_is_held_by_one_slot_and_a_replayed_step_gets_its_own_back(run_db_factory):
    a, b = RunClaims(run_db_factory()), RunClaims(run_db_factory())  # two processes of one run
    assert a.claim_urls("t1/q1_a", ["u1", "u2"]) == ["u1", "u2"]
    assert b.claim_urls("t2/q1_a", ["u2", "u3"]) == ["u3"]
    assert a.claim_urls("t1/q1_a", ["u2", "u1"]) == ["u2", "u1"]  # the same owner, after a kill
    assert {"u2", "u3"} <= set(b.claimed_urls()) and "u9" not in b.claimed_urls()  # what b has seen claimed
    assert a.claim_image("t1/q1_a", "a" * 64, "ff00ff00ff00ff00") is None
    assert b.claim_image("t2/q1_a", "a" * 64, "ff00ff00ff00ff00").startswith(f"duplicate of {'a' * 64}")
    near = b.claim_image("t2/q1_a", "b" * 64, "ff00ff00ff00ff03")  # 2 bits away
    assert near is not None and "pHash distance 2" in near and "t1/q1_a" in near
    assert a.claim_image("t1/q1_a", "a" * 64, "ff00ff00ff00ff00") is None
    assert b.claim_image("t2/q1_a", "c" * 64, "00ff00ff00ff00ff") is None  # far away: its own image
    a.close()
    b.close()


def test_leases_hand_out_each_task_once_and_take_over_a_silent_workers_tasks(run_db_factory):
    now = [1000.0]
    a, b = TaskLeases(run_db_factory(), clock=lambda: now[0]), TaskLeases(run_db_factory(), clock=lambda: now[0])
    a.register(["t1", "t2", "t3"])
    b.register(["t1", "t2", "t3", "t4"])  # idempotent; new tasks join at the end
    assert a.claim("A", lease=10) == "t1" and b.claim("B", lease=10) == "t2"
    a.finish("t1", "done")
    now[0] += 5
    a.renew("A", lease=10)
    assert a.claim("A", lease=10) == "t3" and b.claim("B", lease=10) == "t4" and a.claim("A", lease=10) is None
    now[0] += 11  # B went silent; A renews
    a.renew("A", lease=10)
    status = a.status()
    assert status.counts == {"pending": 0, "running": 3, "done": 1, "failed": 0}
    assert [task for task, worker, _ in status.stale] == ["t2", "t4"]
    assert a.claim("A", lease=10) == "t2"  # the first stale lease, in task order
    assert b.release("B") == 1 and a.claim("A", lease=10) == "t4"
    assert a.open_tasks() == 3


def test_the_call_cache_is_one_table_for_every_process(run_db_factory):
    first, second = CallCache(run_db_factory()), CallCache(run_db_factory())
    first.put("k1", "openai", ChatResult(text="yes", model="m", usage=Usage(3, 1)))
    first.put("k1", "openai", ChatResult(text="again", model="m"))  # a second answer to one call is ignored
    hit = second.get("k1")
    assert hit is not None and hit.text == "yes" and hit.cached and hit.usage.prompt_tokens == 3
    assert second.get("k2") is None


def _claim_all(factory, worker: str, results) -> None:
    leases = TaskLeases(factory())
    taken = []
    while (task := leases.claim(worker, lease=60)) is not None:
        taken.append(task)
        leases.finish(task, "done")
    claims = RunClaims(factory())
    won = [n for n in range(20) if claims.claim_image(worker, f"{n:064x}", f"{n:016x}") is None]
    results.put((worker, taken, won))


def test_processes_racing_for_tasks_and_images_each_get_distinct_ones(run_db_factory):
    TaskLeases(run_db_factory()).register([f"t{n}" for n in range(40)])
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [context.Process(target=_claim_all, args=(run_db_factory, f"w{n}", results)) for n in range(3)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join()
    tasks = [task for _, taken, _ in outcomes for task in taken]
    assert sorted(tasks) == sorted(f"t{n}" for n in range(40))  # every task once, none twice
    images = [n for _, _, won in outcomes for n in won]
    # 20 images whose pHashes differ in few bits: each claimed once, and near-duplicates refused
    assert len(images) == len(set(images)) and images


def test_two_runs_in_one_database_do_not_wait_for_each_other(postgres):
    """Every write transaction takes its run's lock: a run holding it must not stall another run."""
    from schemas.run_db import open_run_db

    first = RunClaims(open_run_db(postgres.url, schema="run_lock_first"))
    second = RunClaims(open_run_db(postgres.url, schema="run_lock_second"))
    with first.db.transaction():  # the first run's lock held...
        done = threading.Event()
        writer = threading.Thread(target=lambda: (second.claim_urls("t1/q1_a", ["u1"]), done.set()))
        writer.start()
        assert done.wait(timeout=10), "the second run waited for the first run's lock"
    writer.join()
    first.close()
    second.close()
