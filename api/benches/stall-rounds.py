#!/usr/bin/env python3
"""10-second rounds of the http-vs-postgres wrk load against one server whose store keeps
growing (needs wrk and curl); prints per round appends/s, p50, p99 and max, and keeps the
server's log (its slow-write warnings) in a temporary directory it names. Usage:
stall-rounds.py BINARY DATA_DIR MINUTES [--subscribers-alternate] [--postgres-alternate]
(--subscribers-alternate: every second round with 100 `curl -N` subscribers following live;
--postgres-alternate: after each round, the same 10 s of `pgbench -c64 -j2` single-row INSERTs
into a PostgreSQL events table with a unique (stream, version) index, as ../shared/bench/
http-vs-postgres runs them, with every transaction's latency logged (`pgbench -l`) so that its
p50, p99 and max print beside ours; PGURL, default postgres://postgres@127.0.0.1:5432/test)"""
import glob, os, re, subprocess, sys, tempfile, time, json, urllib.request
from wrk_append import TOKEN, seed, serve, wrk
binary, data, minutes = sys.argv[1], sys.argv[2], float(sys.argv[3])
alternate = '--subscribers-alternate' in sys.argv
postgres = '--postgres-alternate' in sys.argv
pgurl = os.environ.get('PGURL', 'postgres://postgres@127.0.0.1:5432/test')
work = tempfile.mkdtemp(prefix="stall-rounds-")
if not os.path.exists(data):
    seed(binary, data, work)
log = open(os.path.join(work, 'server.log'), 'a')
print(f'server log: {os.path.join(work, "server.log")}', flush=True)
t0 = time.time()
srv, port = serve(binary, data, log)
token = TOKEN
subs = []
schema = f'stall_rounds_{os.getpid()}'
if postgres:
    subprocess.run(['psql', pgurl, '-q', '-v', 'ON_ERROR_STOP=1', '-c',
                    f'create schema {schema}; create table {schema}.events(position bigserial primary key, id uuid not null unique, '
                    'stream text not null, version int not null, type text not null, data jsonb not null, '
                    'occurred_at timestamptz not null, recorded_at timestamptz not null default now(), unique(stream, version))'],
                   check=True)
    sql = os.path.join(work, 'insert.sql')
    open(sql, 'w').write("\\set s random(1, 1000000000000000)\n"
                         f"insert into {schema}.events(id, stream, version, type, data, occurred_at) values (gen_random_uuid(), "
                         "'customer-' || :s, 0, 'ActivityLogged', '{\"kind\":\"call\",\"rep\":\"p1\",\"duration_s\":120}', now());\n")


def pgbench_round(r):
    """10 s of pgbench; its rate and the p50/p99/max of every transaction's logged latency."""
    prefix = os.path.join(work, f'pg-{r}')
    out = subprocess.run(['pgbench', '-n', '-c', '64', '-j', '2', '-T', '10', '-l', '--log-prefix', prefix, '-f', sql, pgurl],
                         capture_output=True, text=True, check=True).stdout
    lat = []
    for name in glob.glob(prefix + '.*'):
        with open(name) as f:
            lat += [int(line.split()[2]) / 1000 for line in f]
        os.unlink(name)
    lat.sort()
    tps = float(re.search(r'tps = ([\d.]+)', out)[1])
    return f'{tps:,.0f} inserts/s p50 {lat[len(lat) // 2]:.2f} p99 {lat[int(len(lat) * 0.99)]:.2f} max {lat[-1]:.2f} ms'


try:
    print(f'ready after {time.time() - t0:.1f} s', flush=True)
    r = 0
    while time.time() - t0 < minutes * 60:
        r += 1
        with_subs = alternate and r % 2 == 0
        if with_subs:
            head = json.load(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=5))['last_position']
            subs = [subprocess.Popen(['curl', '-sN', '-o', '/dev/null', '-H', f'Authorization: Bearer {token}',
                                      f'http://127.0.0.1:{port}/v1/subscribe?from_position={head + 1}'])
                    for _ in range(100)]
            time.sleep(1)
        n, non2xx, secs, p50, p99, worst = wrk(port, 10, work)
        for p in subs: p.terminate()
        for p in subs: p.wait()
        subs = []
        h = json.load(urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=5))
        load = open('/proc/loadavg').read().split()[0]
        print(f'{time.strftime("%H:%M:%S")} round {r}{" +100 SSE" if with_subs else ""}: {n / secs:,.0f} appends/s '
              f'p50 {p50} p99 {p99} max {worst} ms non2xx {non2xx} load {load} health {json.dumps(h)[:120]}', flush=True)
        if postgres:
            theirs = pgbench_round(r)
            print(f'{time.strftime("%H:%M:%S")} round {r} PostgreSQL: {theirs} '
                  f'load {open("/proc/loadavg").read().split()[0]}', flush=True)
finally:
    if postgres:
        subprocess.run(['psql', pgurl, '-q', '-c', f'drop schema if exists {schema} cascade'], capture_output=True)
    for p in subs: p.terminate()
    srv.terminate(); srv.wait()
