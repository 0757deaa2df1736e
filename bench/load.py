#!/usr/bin/env python3
"""A fixed number of resolved reads of random tenants and integrations
(t000000.. x svc0..svc2, as bench/seed.py makes them), from THREADS
keep-alive connections; exits 1 if any answer is not 200. For counting
work per request (bench/instructions.sh), where wrk's fixed duration would
make the count depend on speed.

usage: load.py HOST:PORT TOKEN READS THREADS TENANTS"""
import http.client
import random
import sys
import threading

host, token, reads, threads, tenants = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
failed = []


def run(n, seed):
    rnd = random.Random(seed)
    conn = http.client.HTTPConnection(host, timeout=300)
    for _ in range(n):
        path = f"/tenants/t{rnd.randrange(tenants):06d}/integrations/svc{rnd.randrange(3)}/resolved"
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            failed.append(f"GET {path}: {r.status}")


workers = [threading.Thread(target=run, args=(reads // threads, i)) for i in range(threads)]
for w in workers:
    w.start()
for w in workers:
    w.join()
if failed:
    sys.exit(f"{len(failed)} reads failed, the first: {failed[0]}")
