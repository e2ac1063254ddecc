"""nginx's own times of the measured run (inside.sh): the access log's
lines after the first SKIP (the warm-up's), "$msec $request_time
$asyncx_pipeline_time $connection_requests" each.  Prints the
percentiles of $request_time and of $asyncx_pipeline_time ("-" where the
location has no pipeline), in ms, the largest number of answers logged
in one event-loop pass (the same $msec: nginx's clock is cached for a
pass), and when nginx made the first request of each connection (its
$msec less its $request_time: when it read it), in ms after the first
of them: over how long the first wave was read.
    python3 inside.py SKIP LOG
"""
import collections
import sys

skip, path = int(sys.argv[1]), sys.argv[2]
with open(path) as f:
    rows = [line.split() for line in f if line.strip()][skip:]

if not rows:
    sys.exit("no answers logged")


def pct(values, q):
    return values[min(len(values) - 1, int(q * len(values)))]


def show(name, values):
    values = sorted(values)
    return "%s_p50_ms=%.0f %s_p99_ms=%.0f %s_max_ms=%.0f" % (
        name, pct(values, 0.5), name, pct(values, 0.99), name, values[-1])


line = ["INSIDE answers=%d" % len(rows),
        show("request_time", [float(r[1]) * 1000 for r in rows])]
pipeline = [float(r[2]) * 1000 for r in rows if r[2] != "-"]
if pipeline:
    line.append(show("pipeline_time", pipeline))
line.append("max_answers_per_pass=%d"
            % max(collections.Counter(r[0] for r in rows).values()))
read = sorted(float(r[0]) - float(r[1]) for r in rows if r[3] == "1")
if read:
    line.append("first_read_p50_ms=%.0f first_read_p99_ms=%.0f"
                " first_read_max_ms=%.0f"
                % tuple((pct(read, q) - read[0]) * 1000
                        for q in (0.5, 0.99, 1)))
print(" ".join(line))
