"""redis-py against piccolo-server: default pipelines (transaction=True, MULTI/EXEC under the
hood) and a WATCH/MULTI/EXEC optimistic-locking counter under contention from several
processes, whose final value must be exact. Run by tests/redis_py.rs (ignored; CI installs
redis-py in a virtual environment). Exits non-zero on any failure; every loop is bounded."""

import multiprocessing
import sys

import redis

PROCESSES = 4
INCREMENTS = 100
MAX_ATTEMPTS = 100_000


def client(port):
    return redis.Redis(host="127.0.0.1", port=port, protocol=2, socket_timeout=20)


def default_pipeline(port):
    r = client(port)
    r.flushall()
    pipe = r.pipeline()  # transaction=True is the default
    pipe.set("a", "1").incr("a").mset({"b": "2", "c": "3"}).mget("a", "b", "c")
    pipe.rename("c", "d").exists("c", "d").get("missing")
    results = pipe.execute()
    assert results == [True, 2, True, [b"2", b"2", b"3"], True, 1, None], results
    # An error inside the transaction comes back in its place (raise_on_error=False).
    pipe = r.pipeline()
    pipe.set("e", "x").incr("e").get("e")
    results = pipe.execute(raise_on_error=False)
    assert results[0] is True and results[2] == b"x", results
    assert isinstance(results[1], redis.ResponseError), results
    # A pipeline without a transaction works too.
    pipe = r.pipeline(transaction=False)
    for index in range(1000):
        pipe.set(f"p:{index}", index)
    assert all(pipe.execute())
    assert r.dbsize() == 1000 + 4, r.dbsize()  # a, b, d, e and the pipelined keys


def increment(port, times, counts):
    r = client(port)
    aborted = 0
    for _ in range(times):
        for attempt in range(MAX_ATTEMPTS):
            with r.pipeline() as pipe:
                try:
                    pipe.watch("counter")
                    value = int(pipe.get("counter"))
                    pipe.multi()
                    pipe.set("counter", value + 1)
                    pipe.incr("transactions")
                    pipe.execute()
                    break
                except redis.WatchError:
                    aborted += 1
        else:
            raise SystemExit("no progress")
    counts.put(aborted)


def contended_counter(port):
    r = client(port)
    r.set("counter", 0)
    r.set("transactions", 0)
    counts = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=increment, args=(port, INCREMENTS, counts))
        for _ in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0, f"an incrementing process failed ({worker.exitcode})"
    aborted = sum(counts.get(timeout=20) for _ in workers)
    want = PROCESSES * INCREMENTS
    assert int(r.get("counter")) == want, (r.get("counter"), want)
    assert int(r.get("transactions")) == want, (r.get("transactions"), want)
    print(f"counter {want} exact; {aborted} transactions aborted by WatchError and retried")


def main():
    port = int(sys.argv[1])
    default_pipeline(port)
    contended_counter(port)
    print("redis-py transactions: ok")


if __name__ == "__main__":
    main()
