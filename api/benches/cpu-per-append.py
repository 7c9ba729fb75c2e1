#!/usr/bin/env python3
"""A/B: server CPU (user+sys, µs) per single-event HTTP append under wrk -t2 -c64, rounds
alternating between binaries. Usage: cpu-per-append.py SECS ROUNDS BIN_A BIN_B ...
(needs wrk; the same 64-customer ActivityLogged load as stall-rounds.py, each round on a fresh store)"""
import json, os, re, shutil, socket, subprocess, sys, tempfile, time, urllib.request
secs, rounds, bins = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
work = tempfile.mkdtemp(prefix='cpa-')
LUA = os.path.join(work, 'a.lua')
open(LUA, 'w').write(r'''local n, tid, counter = 0, 0, 0
function setup(thread) thread:set("tid", counter); counter = counter + 1 end
function init(args) token = args[1] end
request = function()
  n = n + 1
  local k = (n * 7 + tid * 13) % 64
  local body = '{"events":[{"type":"ActivityLogged","data":{"kind":"call","rep":"p' .. k .. '","duration_s":120}}]}'
  return wrk.format("POST", "/v1/streams/customer-P" .. k .. "/events",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end

done = function(summary, latency, requests)
  io.write(string.format("WRK requests=%d non2xx=%d secs=%.3f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", summary.requests,
    summary.errors.status, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
''')
pre = os.path.join(work, 'pre.ndjson')
with open(pre, 'w') as f:
    for k in range(64):
        f.write(json.dumps({'stream': 'org-main', 'type': 'RepJoined', 'occurred_at': '2026-01-01T00:00:00Z',
                            'id': f'31000000-0000-4000-8000-{k:012d}', 'data': {'rep': f'p{k}', 'name': f'P {k}', 'team': 'east'}}) + '\n')
    for k in range(64):
        f.write(json.dumps({'stream': f'customer-P{k}', 'type': 'CustomerRegistered', 'occurred_at': '2026-01-01T00:00:00Z',
                            'id': f'30000000-0000-4000-8000-{k:012d}', 'data': {'name': f'P{k}', 'owner': f'p{k}'}}) + '\n')
tok = 'bench-admin-token-' + '0' * 24
tck = os.sysconf('SC_CLK_TCK')
def cpu(pid):
    # the whole process, all threads
    f = open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()
    return (int(f[11]) + int(f[12])) / tck
res = {b: [] for b in bins}
for r in range(rounds):
    for b in bins:
        data = os.path.join(work, f'd{r}{bins.index(b)}')
        subprocess.run([b, '--data', data, 'import', pre], check=True, capture_output=True)
        s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
        srv = subprocess.Popen([b, '--data', data, 'serve', '--addr', f'127.0.0.1:{port}'],
                               env=dict(os.environ, DEALTRAIL_ADMIN_TOKEN=tok), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(300):
            try: urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=1); break
            except Exception: time.sleep(0.1)
        c0 = cpu(srv.pid)
        out = subprocess.run(['wrk', '-t2', '-c64', f'-d{secs}s', '-s', LUA, f'http://127.0.0.1:{port}/', '--', tok],
                             capture_output=True, text=True).stdout
        c1 = cpu(srv.pid)
        srv.terminate(); srv.wait()
        m = re.search(r'requests=(\d+) non2xx=(\d+) secs=([\d.]+) p50_ms=([\d.]+) p99_ms=([\d.]+) max_ms=([\d.]+)', out)
        n = int(m[1]); per = (c1 - c0) * 1e6 / n
        res[b].append(per)
        print(f'{time.strftime("%H:%M:%S")} {os.path.basename(b)}: {n / float(m[3]):,.0f}/s p50 {m[4]} p99 {m[5]} max {m[6]} ms, '
              f'server CPU {per:.1f} µs/append, load {open("/proc/loadavg").read().split()[0]}', flush=True)
        shutil.rmtree(data, ignore_errors=True)
for b in bins:
    v = sorted(res[b]); print(f'{os.path.basename(b)}: server CPU µs/append median {v[len(v)//2]:.1f} (min {v[0]:.1f}, max {v[-1]:.1f})')
shutil.rmtree(work, ignore_errors=True)
