#!/usr/bin/env python3
"""The notes' own system as a peer: Python multiprocessing Queue / JoinableQueue / Pipe / Lock.

Run by bench/shuttle_scenarios (never by hand, though you may):
    python3 python_peer.py --kind queue --producers 3 --consumers 2 --capacity 10 \
        --payload 8 --items 10000 --seconds 1 --out result.txt
Same method as the C++ harness: fork() children, release them from a start barrier, each item
carries producer id + sequence, consumers check per-producer order, count and a checksum (the
sum of the headers), the parent joins the producers and puts one sentinel (None) per consumer.
A producer (sender, pinger) stops early once --seconds passed since the release (0: no limit);
the checks then expect exactly what was sent.
Writes key=value lines to --out: ok, items, seconds, p50_us, p99_us, error.
"""
import argparse
import multiprocessing as mp
import struct
import sys
import time

MASK = (1 << 64) - 1


def make_item(header, payload, filler):
    if payload == 8:
        return header                      # an int, as the notes put ints
    head = struct.pack("<Q", header)
    return head + filler + head


def read_header(item, payload):
    if payload == 8:
        return item, True
    ok = len(item) == payload and item[:8] == item[-8:]
    return int.from_bytes(item[:8], "little"), ok


def budget_end(seconds):
    return time.monotonic() + seconds if seconds > 0 else float("inf")


def producer(queue, index, items, payload, barrier, results, joinable, seconds):
    filler = bytes(max(payload - 16, 0))
    barrier.wait()
    end = budget_end(seconds)
    sent = 0
    while sent < items:
        if sent % 64 == 0 and time.monotonic() > end:
            break
        queue.put(make_item(index << 40 | sent, payload, filler))
        sent += 1
    results.put(("sent", index, sent))
    if joinable:
        queue.join()
        results.put(("joined", time.monotonic_ns()))


def consumer(queue, producers, items, payload, barrier, results, joinable):
    count = checksum = errors = last = 0
    next_sequence = [0] * producers
    barrier.wait()
    while True:
        item = queue.get()
        if item is None:
            if joinable:
                queue.task_done()
            break
        last = time.monotonic_ns()
        header, ok = read_header(item, payload)
        p, s = header >> 40, header & ((1 << 40) - 1)
        if not ok or p >= producers or s < next_sequence[p] or s >= items:
            errors += 1
        else:
            next_sequence[p] = s + 1
        count += 1
        checksum += header
        if joinable:
            queue.task_done()
    results.put(("consumed", count, checksum & MASK, errors, last))


def run_queue(args, ctx, joinable):
    queue = ctx.JoinableQueue(args.capacity) if joinable else ctx.Queue(args.capacity)
    results = ctx.Queue()
    barrier = ctx.Barrier(args.producers + args.consumers + 1)
    consumers = [ctx.Process(target=consumer, daemon=True,
                             args=(queue, args.producers, args.items, args.payload, barrier,
                                   results, joinable)) for _ in range(args.consumers)]
    producers = [ctx.Process(target=producer, daemon=True,
                             args=(queue, i, args.items, args.payload, barrier, results, joinable,
                                   args.seconds))
                 for i in range(args.producers)]
    for process in consumers + producers:
        process.start()
    # Start the clock before the release: on a loaded machine the workers may finish before
    # this process runs again, which would otherwise measure zero seconds.
    start = time.monotonic_ns()
    barrier.wait()
    for process in producers:
        process.join()
    for _ in consumers:
        queue.put(None)
    count = checksum = errors = 0
    end = start
    expected_messages = len(consumers) + len(producers) * (2 if joinable else 1)
    sent = [0] * args.producers
    for _ in range(expected_messages):
        message = results.get()
        if message[0] == "sent":
            sent[message[1]] = message[2]
        elif message[0] == "joined":
            end = max(end, message[1])
        else:
            count += message[1]
            checksum += message[2]
            errors += message[3]
            if not joinable:
                end = max(end, message[4])
    for process in consumers:
        process.join()
    expected_checksum = sum(n * (n - 1) // 2 + n * (i << 40) for i, n in enumerate(sent)) & MASK
    return check(count, sum(sent), checksum & MASK, expected_checksum, errors, start, end)


def check(count, expected, checksum, expected_checksum, errors, start, end):
    if count != expected:
        return {"ok": 0, "error": f"received {count} of {expected} items"}
    if checksum != expected_checksum:
        return {"ok": 0, "error": "checksum mismatch"}
    if errors:
        return {"ok": 0, "error": f"{errors} malformed or out-of-order items"}
    return {"ok": 1, "items": count, "seconds": (end - start) / 1e9}


def pipe_sender(connection, receiver_end, items, payload, barrier, seconds, results):
    receiver_end.close()
    filler = bytes(max(payload - 16, 0))
    barrier.wait()
    end = budget_end(seconds)
    sent = 0
    while sent < items:
        if sent % 64 == 0 and time.monotonic() > end:
            break
        header = struct.pack("<Q", sent)
        connection.send_bytes(header + filler + header if payload >= 16 else header)
        sent += 1
    results.put(("sent", sent))
    connection.close()


def pipe_receiver(connection, sender_end, items, payload, barrier, results):
    sender_end.close()
    count = checksum = errors = last = 0
    barrier.wait()
    while True:
        try:
            message = connection.recv_bytes()
        except EOFError:
            break
        last = time.monotonic_ns()
        header = int.from_bytes(message[:8], "little")
        if len(message) != payload or (payload >= 16 and message[:8] != message[-8:]) \
                or header != count:
            errors += 1
        count += 1
        checksum += header
    results.put(("received", count, checksum & MASK, errors, last))


def run_pipe(args, ctx):
    receiver_end, sender_end = ctx.Pipe(duplex=False)
    results = ctx.Queue()
    barrier = ctx.Barrier(3)
    sender = ctx.Process(target=pipe_sender, daemon=True,
                         args=(sender_end, receiver_end, args.items, args.payload, barrier,
                               args.seconds, results))
    receiver = ctx.Process(target=pipe_receiver, daemon=True,
                           args=(receiver_end, sender_end, args.items, args.payload, barrier,
                                 results))
    sender.start()
    receiver.start()
    receiver_end.close()
    sender_end.close()
    # Start the clock before the release: on a loaded machine the workers may finish before
    # this process runs again, which would otherwise measure zero seconds.
    start = time.monotonic_ns()
    barrier.wait()
    n = count = checksum = errors = 0
    end = start
    for _ in range(2):
        message = results.get()
        if message[0] == "sent":
            n = message[1]
        else:
            _, count, checksum, errors, end = message
    sender.join()
    receiver.join()
    return check(count, n, checksum, (n * (n - 1) // 2) & MASK, errors, start, max(end, start))


def ponger(connection, barrier):
    barrier.wait()
    while True:
        message = connection.recv_bytes()
        if message == b"":
            break
        connection.send_bytes(message)


def run_ping_pong(args, ctx):
    mine, theirs = ctx.Pipe()
    barrier = ctx.Barrier(2)
    child = ctx.Process(target=ponger, args=(theirs, barrier), daemon=True)
    child.start()
    message = bytes(args.payload)
    barrier.wait()
    samples = []
    end = budget_end(args.seconds)
    for i in range(args.items + 100):
        if i > 100 and time.monotonic() > end:
            break
        t0 = time.monotonic_ns()
        mine.send_bytes(message)
        mine.recv_bytes()
        samples.append(time.monotonic_ns() - t0)
    mine.send_bytes(b"")
    child.join()
    samples = sorted(samples[100:])
    return {"ok": 1, "items": len(samples), "seconds": sum(samples) / 1e9,
            "p50_us": samples[len(samples) // 2] / 1e3,
            "p99_us": samples[len(samples) * 99 // 100] / 1e3}


def buyer(lock, stock, sold, index, barrier):
    barrier.wait()
    mine = 0
    while True:
        with lock:
            if stock.value == 0:
                break
            stock.value -= 1
        mine += 1
    sold[index] = mine


def run_tickets(args, ctx):
    lock = ctx.Lock()
    stock = ctx.Value("Q", args.items, lock=False)
    sold = ctx.Array("Q", args.producers, lock=False)
    barrier = ctx.Barrier(args.producers + 1)
    buyers = [ctx.Process(target=buyer, args=(lock, stock, sold, i, barrier), daemon=True)
              for i in range(args.producers)]
    for process in buyers:
        process.start()
    # Start the clock before the release: on a loaded machine the workers may finish before
    # this process runs again, which would otherwise measure zero seconds.
    start = time.monotonic_ns()
    barrier.wait()
    for process in buyers:
        process.join()
    end = time.monotonic_ns()
    total = sum(sold)
    if total != args.items or stock.value != 0:
        return {"ok": 0, "error": f"sold {total} of a stock of {args.items}"}
    return {"ok": 1, "items": total, "seconds": (end - start) / 1e9}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", required=True,
                        choices=["queue", "joinable", "pipe", "ping-pong", "tickets"])
    parser.add_argument("--producers", type=int, default=1)
    parser.add_argument("--consumers", type=int, default=1)
    parser.add_argument("--capacity", type=int, default=10)
    parser.add_argument("--payload", type=int, default=8)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    ctx = mp.get_context("fork")
    try:
        if args.kind in ("queue", "joinable"):
            result = run_queue(args, ctx, args.kind == "joinable")
        elif args.kind == "pipe":
            result = run_pipe(args, ctx)
        elif args.kind == "ping-pong":
            result = run_ping_pong(args, ctx)
        else:
            result = run_tickets(args, ctx)
    except Exception as error:  # reported as a failed run, never a figure
        result = {"ok": 0, "error": f"{type(error).__name__}: {error}"}
    with open(args.out, "w") as out:
        for key, value in result.items():
            out.write(f"{key}={value}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
