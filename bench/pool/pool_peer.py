"""Python's multiprocessing.Pool doing what bench/pool/pool_bench.cpp does, for the same-run
ratios. Usage: pool_peer.py MODE COUNT WORKERS; prints one number.
  map        Pool.map(plus_one, range(COUNT)) with its default chunksize: items per second
  async      COUNT apply_async(plus_one, (i,)), then get() each: tasks per second
  roundtrip  COUNT apply(plus_one, (i,)) one after another: the median round trip in microseconds
"""
import multiprocessing as mp
import statistics
import sys
import time


def plus_one(x):
    return x + 1


def main():
    mode, count, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    with mp.Pool(workers) as pool:
        pool.map(plus_one, range(workers * 4))  # warm the workers
        if mode == "map":
            start = time.perf_counter()
            results = pool.map(plus_one, range(count))
            elapsed = time.perf_counter() - start
            assert results[-1] == count
            print(count / elapsed)
        elif mode == "async":
            start = time.perf_counter()
            pending = [pool.apply_async(plus_one, (i,)) for i in range(count)]
            total = sum(result.get() for result in pending)
            elapsed = time.perf_counter() - start
            assert total == count * (count + 1) // 2
            print(count / elapsed)
        elif mode == "roundtrip":
            times = []
            for i in range(count):
                start = time.perf_counter()
                pool.apply(plus_one, (i,))
                times.append(time.perf_counter() - start)
            print(statistics.median(times) * 1e6)
        else:
            raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main()
