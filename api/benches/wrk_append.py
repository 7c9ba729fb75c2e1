"""The single-event HTTP append load that stall-rounds.py and cpu-per-append.py share (the
load of ../shared/bench/http-vs-postgres): wrk posting `ActivityLogged` to 64 customers round
robin with an admin bearer token, on a store seeded with their 64 reps and customers."""
import json, os, re, socket, subprocess, time, urllib.request

TOKEN = 'bench-admin-token-' + '0' * 24

LUA = r'''
local n, tid, counter = 0, 0, 0
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
'''


def seed(binary, data, work):
    """Imports the 64 reps and their customers into a new store at `data`."""
    pre = os.path.join(work, 'pre.ndjson')
    with open(pre, 'w') as f:
        for k in range(64):
            f.write(json.dumps({'stream': 'org-main', 'type': 'RepJoined', 'occurred_at': '2026-01-01T00:00:00Z',
                                'id': f'31000000-0000-4000-8000-{k:012d}', 'data': {'rep': f'p{k}', 'name': f'P {k}', 'team': 'east'}}) + '\n')
        for k in range(64):
            f.write(json.dumps({'stream': f'customer-P{k}', 'type': 'CustomerRegistered', 'occurred_at': '2026-01-01T00:00:00Z',
                                'id': f'30000000-0000-4000-8000-{k:012d}', 'data': {'name': f'P{k}', 'owner': f'p{k}'}}) + '\n')
    subprocess.run([binary, '--data', data, 'import', pre], check=True, capture_output=True)


def serve(binary, data, out=subprocess.DEVNULL):
    """Starts `serve` on a free port and waits for /healthz; returns (process, port)."""
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    srv = subprocess.Popen([binary, '--data', data, 'serve', '--addr', f'127.0.0.1:{port}'],
                           env=dict(os.environ, DEALTRAIL_ADMIN_TOKEN=TOKEN), stdout=out, stderr=out)
    for _ in range(3000):
        try:
            urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    return srv, port


def wrk(port, secs, work):
    """One wrk run of the load; returns (requests, non-2xx, seconds, p50, p99, max in ms)."""
    lua = os.path.join(work, 'append.lua')
    if not os.path.exists(lua):
        open(lua, 'w').write(LUA)
    out = subprocess.run(['wrk', '-t2', '-c64', f'-d{secs}s', '-s', lua, f'http://127.0.0.1:{port}/', '--', TOKEN],
                         capture_output=True, text=True).stdout
    m = re.search(r'requests=(\d+) non2xx=(\d+) secs=([\d.]+) p50_ms=([\d.]+) p99_ms=([\d.]+) max_ms=([\d.]+)', out)
    return int(m[1]), int(m[2]), float(m[3]), m[4], m[5], m[6]
