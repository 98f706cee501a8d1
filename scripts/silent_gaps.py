#!/usr/bin/env python
"""Run a command, timestamp every line (and carriage-return update) of its output, and report the longest silences.

    python scripts/silent_gaps.py make demo     # the user-roads target: no silence longer than 15 s once the environment exists
"""
import subprocess, sys, time, json
t0 = time.time(); last = t0; gaps = []; buf = b''
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
while True:
    ch = p.stdout.read1(4096) if hasattr(p.stdout, 'read1') else p.stdout.read(1)
    if not ch: break
    buf += ch
    while True:
        i = min([x for x in (buf.find(b'\n'), buf.find(b'\r')) if x >= 0], default=-1)
        if i < 0: break
        line, buf = buf[:i], buf[i+1:]
        now = time.time()
        if line.strip():
            gaps.append((now - last, now - t0, line.decode(errors='replace')[:100])); last = now
p.wait()
gaps.sort(reverse=True)
print(json.dumps(dict(rc=p.returncode, wall_s=round(time.time() - t0, 1), lines=len(gaps), top_gaps=[(round(g, 1), round(t, 1), l) for g, t, l in gaps[:6]]), indent=1))
