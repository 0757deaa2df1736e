#!/usr/bin/env python3
"""Seeds the scale benchmark through Tessera's API: N tenants, then a config
with a secret field for each tenant and integration svc0..svc2. Several
threads, each on its own keep-alive connection; every answer must be a
success (exits 1 naming the first failure).

usage: seed.py URL ROOT_TOKEN N [THREADS]"""
import http.client
import json
import sys
import threading
import urllib.parse

url, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 8
host = urllib.parse.urlparse(url).netloc
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
failures = []


def run(jobs):
    conn = http.client.HTTPConnection(host, timeout=60)
    for method, path, body in jobs:
        if failures:
            return
        conn.request(method, path, body=json.dumps(body), headers=headers)
        r = conn.getresponse()
        answer = r.read()
        if r.status >= 300:
            failures.append(f"{method} {path}: {r.status} {answer[:200]!r}")


def phase(jobs):
    workers = [threading.Thread(target=run, args=(jobs[i::threads],)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if failures:
        sys.exit("seeding failed: " + failures[0])


phase([("POST", "/tenants", {"id": f"t{i:06d}", "name": f"Tenant {i}"}) for i in range(n)])
phase([
    ("PUT", f"/tenants/t{i:06d}/integrations/svc{k}/config",
     {"config": {"region": f"eu-{k}", "api_key": f"scale-secret-{i}-{k}"}})
    for i in range(n) for k in range(3)
])
