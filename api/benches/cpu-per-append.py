#!/usr/bin/env python3
"""A/B: server CPU (user+sys, µs) per single-event HTTP append under wrk -t2 -c64, rounds
alternating between binaries. Usage: cpu-per-append.py SECS ROUNDS BIN_A BIN_B ...
(needs wrk; the same 64-customer ActivityLogged load as stall-rounds.py, each round on a fresh store)"""
import os, shutil, sys, tempfile, time
from wrk_append import seed, serve, wrk
secs, rounds, bins = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
work = tempfile.mkdtemp(prefix='cpa-')
tck = os.sysconf('SC_CLK_TCK')
def cpu(pid):
    # the whole process, all threads
    f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / tck
res = {b: [] for b in bins}
for r in range(rounds):
    for b in bins:
        data = os.path.join(work, f'd{r}{bins.index(b)}')
        seed(b, data, work)
        srv, port = serve(b, data)
        c0 = cpu(srv.pid)
        n, _, took, p50, p99, worst = wrk(port, secs, work)
        c1 = cpu(srv.pid)
        srv.terminate(); srv.wait()
        per = (c1 - c0) * 1e6 / n
        res[b].append(per)
        print(f'{time.strftime("%H:%M:%S")} {os.path.basename(b)}: {n / took:,.0f}/s p50 {p50} p99 {p99} max {worst} ms, '
              f'server CPU {per:.1f} µs/append, load {open("/proc/loadavg").read().split()[0]}', flush=True)
        shutil.rmtree(data, ignore_errors=True)
for b in bins:
    v = sorted(res[b]); print(f'{os.path.basename(b)}: server CPU µs/append median {v[len(v)//2]:.1f} (min {v[0]:.1f}, max {v[-1]:.1f})')
shutil.rmtree(work, ignore_errors=True)
