#!/usr/bin/python3
# The independent reference of the NDJSON file source (asyncx_sse_source
# file=): generates deterministic test files, computes the events a
# stream must send from the file with Python's own json module, and
# checks a received event stream against them.  Run with Debian's
# /usr/bin/python3 (the suites do), standard library only.
#
#   ndjson_ref.py gen KIND SEED LINES OUT        write a test file
#   ndjson_ref.py check BODY FILE QUERY [FROM]   compare a stream's body
#   ndjson_ref.py ids BODY                       the ids of a body, one a line
#
# QUERY is a JSON object: op (search|transform|aggregate), batch_size,
# max_line, skip_invalid, and keyword, field, icase, limit (search),
# fields (transform, "a,b:c"), group_by, value (aggregate).  FROM is a
# Last-Event-ID: the check then expects the events after it only.

import json
import math
import random
import re
import sys

DEPTH_MAX = 128
GROUPS_MAX = 256
KEY_MAX = 128
BATCH_BUDGET = 48 * 1024

WORDS = ["python", "nginx", "thread", "async", "event", "stream", "json",
         "record", "worker", "pool", "Python", "NGINX", "café", "日本語",
         "ünïcödé", "error", "warn", "info", "debug", "latency"]
LEVELS = ["info", "warn", "error", "debug"]
PATHS = ["/", "/api", "/api/v1/items", "/static/app.js", "/health"]


# --- generation -----------------------------------------------------------

def record(rng, i):
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8)))
    rec = {"id": i, "level": rng.choice(LEVELS), "msg": words,
           "path": rng.choice(PATHS)}
    r = rng.random()
    if r < 0.45:
        rec["latency"] = rng.randint(0, 5000)
    elif r < 0.8:
        rec["latency"] = round(rng.uniform(0, 500), rng.randint(0, 4))
    elif r < 0.9:
        rec["latency"] = str(rng.randint(0, 9))      # not a number
    # else: no latency at all
    if rng.random() < 0.2:
        rec["tags"] = [rng.choice(WORDS) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.1:
        rec["nested"] = {"a": {"b": [1, 2, {"c": rng.choice(WORDS)}]}}
    if rng.random() < 0.05:
        rec["level"] = None
    if rng.random() < 0.05:
        del rec["level"]
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))


INVALID = [
    b"not json at all",
    b"{\"a\": 1,}",
    b"[1, 2, 3]",
    b"\"a string\"",
    b"42",
    b"",
    b"   ",
    b"{\"a\": \"\xff\xfe invalid utf-8 python\"}",
    b"{\"a\": \"nul \x00 byte python\"}",
    b"{\"a\": \"ctl \x01 python\"}",
    b"{\"a\": NaN}",
    b"{\"a\": \"\\ud800 lone python\"}",
    b"{\"a\": 01}",
    b"{\"msg\": \"python\"} trailing",
    b"\xef\xbb\xbf{\"msg\": \"bom python\"}",
    b"{\"msg\": \"python\", \"x\": tru}",
    b"{\"msg\": \"unterminated python}",
]


def number(rng, kinds=None):
    """A JSON number text of a kind the aggregate must get right."""
    kind = rng.choice(kinds) if kinds else rng.randrange(12)
    if kind == 0:
        return str(rng.randint(-1000, 1000))
    if kind == 1:       # 19 digits, within 64 bits
        return str(rng.choice([1, -1]) * rng.randint(10 ** 18, 2 ** 63 - 1))
    if kind == 2:       # at the edges of 64 bits and just past them
        return str(rng.choice([2 ** 63 - 1, -2 ** 63, 2 ** 63, -2 ** 63 - 1,
                               10 ** 19, -10 ** 19]))
    if kind == 3:       # beyond 64 bits, within doubles
        return str(rng.randint(10 ** 19, 10 ** 30))
    if kind == 4:       # longer than 400 bytes, within doubles
        return "1" + "0" * rng.randint(20, 200) + "." + "0" * 300
    if kind == 5:       # tiny: 0 as a double, a value all the same
        return "0." + "0" * rng.randint(400, 500) + "1"
    if kind == 6:       # beyond doubles
        return rng.choice(["1e309", "-1e309", "1" + "0" * 400,
                           "-2E+400", "1.8e308"])
    if kind == 7:       # near the top of doubles: sums overflow
        return rng.choice(["1e308", "-1e308", "1.7976931348623157e308"])
    if kind == 8:
        return "%d.%d" % (rng.randint(-100, 100), rng.randint(0, 999))
    if kind == 9:
        return "%de%d" % (rng.randint(1, 9), rng.randint(-5, 5))
    if kind == 10:
        return rng.choice(["-0", "0.0", "-0.0", "0e0"])
    return str(rng.randint(-2 ** 62, 2 ** 62))


# groups of the "numbers" kind: which kinds of numbers each one gets
NUMBER_GROUPS = {"small": [0, 8, 10], "i64": [1], "edge": [2, 0],
                 "big": [3, 4, 5], "inf": [6, 0], "top": [7], "mixed": None}


def gen(kind, seed, lines, out):
    rng = random.Random(seed)
    i64_sum = 0
    with open(out, "wb") as f:
        for i in range(lines):
            if kind in ("numbers", "blank", "crvalue") \
                    and rng.random() < 0.05:
                # blank lines: no records, no errors
                f.write(rng.choice([b"", b" ", b"\t \r", b"\r"]) + b"\n")
                continue
            if kind == "numbers":
                g = rng.choice(sorted(NUMBER_GROUPS))
                v = number(rng, NUMBER_GROUPS[g])
                if rng.random() < 0.03:
                    v = rng.choice(['"12"', "null", "true", "[1]"])
                elif g == "i64":
                    # 19 digits whose sum stays in 64 bits: exact
                    v = str(-abs(int(v)) if i64_sum >= 0 else abs(int(v)))
                    i64_sum += int(v)
                f.write(('{"g":"%s","v":%s,"i":%d}' % (g, v, i)).encode()
                        + b"\n")
                continue
            if kind == "crvalue" and rng.random() < 0.3:
                # CR inside the values a transform projects
                f.write(b'{"id":' + str(i).encode()
                        + b',"nested":{"a":\r[1,\r2],\r"b":\r"x"},'
                        + b'"tags":[\r"t"\r],"msg":"cr in values"}\n')
                continue
            if kind == "mixed" and rng.random() < 0.08:
                f.write(rng.choice(INVALID) + b"\n")
                continue
            if kind == "cr" and rng.random() < 0.3:
                # JSON whitespace holding CR: one event, several data lines
                f.write(b'{"msg":\r"python cr",\r"id":\r' + str(i).encode()
                        + b',"level":"info","latency":1}\r\n')
                continue
            f.write(record(rng, i).encode() + b"\n")
        if kind == "nofinal":
            f.write(record(rng, lines).encode())


# --- the reference semantics ------------------------------------------------

def depth(v):
    if isinstance(v, dict):
        return 1 + max([depth(x) for x in v.values()] + [0])
    if isinstance(v, list):
        return 1 + max([depth(x) for x in v] + [0])
    return 0


def has_surrogate(v):
    if isinstance(v, str):
        return any(0xd800 <= ord(c) <= 0xdfff for c in v)
    if isinstance(v, dict):
        return any(has_surrogate(k) or has_surrogate(x) for k, x in v.items())
    if isinstance(v, list):
        return any(has_surrogate(x) for x in v)
    return False


def bad_constant(name):
    raise ValueError(name)


def parse(line):
    """The line's object, or None when it is not one valid JSON object."""
    try:
        text = line.decode("utf-8")
        v = json.loads(text, parse_constant=bad_constant)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(v, dict) or depth(v) > DEPTH_MAX or has_surrogate(v):
        return None
    return v


WS = " \t\r\n"


def skip_ws(text, i):
    while i < len(text) and text[i] in WS:
        i += 1
    return i


def raw_members(line):
    """{name as written: value as written} of a valid line's object, the
    last of a repeated name (Python's json finds where each ends)."""
    text = line.decode("utf-8")
    dec = json.JSONDecoder()
    out = {}
    i = skip_ws(text, 0) + 1                    # past "{"
    i = skip_ws(text, i)
    if text[i] == "}":
        return out
    while True:
        start = i
        _, i = dec.raw_decode(text, i)
        name = text[start + 1:i - 1]
        i = skip_ws(text, skip_ws(text, i) + 1)  # past ":"
        start = i
        _, i = dec.raw_decode(text, i)
        out[name] = text[start:i]
        i = skip_ws(text, i)
        if text[i] == "}":
            return out
        i = skip_ws(text, i + 1)                # past ","


def blank(line):
    """Only JSON whitespace: no record, not an invalid line either."""
    return line.strip(b" \t\r") == b""


def fnv(h, data):
    for b in data:
        h = ((h ^ b) * 16777619) & 0xffffffff
    return h


def parse_fields(spec):
    out = []
    for item in spec.split(","):
        name, _, alias = item.partition(":")
        out.append((name, alias or name))
    return out


I64 = range(-2 ** 63, 2 ** 63)


class Stats:
    """The documented semantics: an exact integer sum while it and every
    value fit in 64 bits, then doubles (Python's int + float); integers
    beyond 64 bits are doubles; numbers beyond doubles are out_of_range;
    min and max exact; avg the sum as a double over count."""

    def __init__(self):
        self.records = 0
        self.count = 0
        self.out_of_range = 0
        self.sum = 0
        self.real = False
        self.min = None
        self.max = None

    def add(self, v):
        self.records += 1
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return
        if isinstance(v, int) and v not in I64:
            try:
                v = float(v)
            except OverflowError:
                self.out_of_range += 1
                return
        if isinstance(v, float) and not math.isfinite(v):
            self.out_of_range += 1
            return
        self.count += 1
        if self.min is None or v < self.min:
            self.min = v
        if self.max is None or v > self.max:
            self.max = v
        if not self.real and isinstance(v, int) and self.sum + v in I64:
            self.sum += v
            return
        if not self.real:
            self.real = True
            self.sum = float(self.sum)
        self.sum += float(v)

    def json(self):
        d = {"records": self.records, "count": self.count}
        if self.out_of_range:
            d["out_of_range"] = self.out_of_range
        if not self.count:
            d.update({"sum": 0, "min": None, "max": None, "avg": None})
            return d
        s = self.sum if math.isfinite(self.sum) else None
        d.update({"sum": s, "min": self.min, "max": self.max,
                  "avg": None if s is None else float(s) / self.count})
        return d


def lines_of(data):
    """(start offset, line bytes, next offset) of every line."""
    out = []
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            out.append((pos, data[pos:], len(data)))
            break
        out.append((pos, data[pos:nl], nl + 1))
        pos = nl + 1
    return out


def expected(data, q):
    """Every event of an uninterrupted stream: (id tuple, data dict)."""
    op = q["op"]
    batch = q["batch_size"]
    max_line = q.get("max_line", 65536)
    skip = q.get("skip_invalid", False)
    size = len(data)
    ev = []
    records = matches = skipped = 0
    offset = 0
    closed = 0
    limit = q.get("limit", 0)
    kw = q.get("keyword", "").encode()
    icase = q.get("icase", False)
    if icase:
        kw = kw.lower()
    field = q.get("field", "")
    fields = parse_fields(q["fields"]) if op == "transform" else []
    table = {}
    order = []
    other = Stats()
    overall = Stats()
    tbatch = []          # projected records of the open transform event
    tfirst = 0
    thash = 2166136261

    def pid(phase):
        return (offset, records, matches, skipped, phase)

    def close(at_eof):
        nonlocal closed, tbatch, thash
        if op == "transform":
            if tbatch and (at_eof or records % batch == 0):
                tevent()
            return
        if records <= closed or (not at_eof and records % batch != 0):
            return
        if op == "search":
            d = {"type": "progress", "processed": records, "matches": matches,
                 "skipped": skipped, "offset": offset, "size": size}
        else:
            d = {"type": "stage", "stage": (records + batch - 1) // batch,
                 "processed": records, "skipped": skipped, "offset": offset,
                 "size": size, "groups": len(order),
                 "partial": overall.json()}
        ev.append((pid("b"), d))
        closed = records

    def tevent():
        nonlocal tbatch, thash
        d = {"type": "batch", "batch_num": tfirst // batch + 1,
             "items_processed": records, "skipped": skipped,
             "offset": offset, "size": size, "count": len(tbatch),
             "checksum": "%08x" % thash,
             "records": [json.loads(t) for t in tbatch]}
        ev.append((pid("b"), d))
        tbatch = []
        thash = 2166136261

    def complete(limit_reached=False):
        d = {"type": "complete", "total_processed": records}
        if op == "search":
            d["total_matches"] = matches
        d["skipped"] = skipped
        d["size"] = size
        if op == "search":
            d["limit_reached"] = limit_reached
        if op == "aggregate":
            d["result"] = overall.json()
            d["groups"] = len(order)
            d["by_group"] = [{"key": json.loads(k), "stats": table[k].json()}
                             for k in order]
            d["other"] = other.json() if other.records else None
        ev.append((pid("c"), d))

    def error(line_no, off, what):
        # what the lines before it gave goes out first: a transform's
        # open batch, an aggregate's stage (a search's matches are out)
        if op != "search":
            close(True)
        ev.append(((off, records, matches, skipped, "e"),
                   {"type": "error", "message": what, "line": line_no,
                    "offset": off}))

    for start, line, nxt in lines_of(data):
        if limit and matches >= limit:
            complete(True)
            return ev
        close(False)
        line_no = records + 1
        if len(line) > max_line:
            if skip:
                records += 1
                skipped += 1
                offset = nxt
                continue
            error(line_no, start, "line %d (offset %d) is longer than "
                  "asyncx_sse_max_line_size" % (line_no, start))
            return ev

        if blank(line):
            records += 1
            offset = nxt
            continue

        if op == "search":
            hay = line.lower() if icase else line
            if kw not in hay:
                records += 1
                offset = nxt
                continue

        obj = parse(line)
        if obj is None:
            if skip:
                records += 1
                skipped += 1
                offset = nxt
                continue
            error(line_no, start, None)
            return ev

        members = raw_members(line)

        if op == "search":
            if field:
                text = members.get(field)
                if text is not None and text.startswith('"'):
                    text = text[1:-1]
                t = text.encode() if text is not None else None
                if t is None or kw not in (t.lower() if icase else t):
                    records += 1
                    offset = nxt
                    continue
            records += 1
            matches += 1
            offset = nxt
            ev.append((pid("m"), {"type": "match", "line": line_no,
                                  "offset": start, "record": obj}))
        elif op == "transform":
            parts = []
            for name, alias in fields:
                v = members.get(name)
                parts.append('"%s": %s' % (alias, v if v is not None
                                                    else "null"))
            text = "{" + ", ".join(parts) + "}"
            tb = text.encode()
            blen = sum(len(t.encode()) for t in tbatch) \
                + 2 * max(len(tbatch) - 1, 0)
            need = 2 + sum(len(a.encode()) + 6 for _, a in fields) \
                + sum(len(members[n].encode())
                      if n in members else 4 for n, _ in fields)
            if tbatch and blen + need > BATCH_BUDGET:
                tevent()
            if not tbatch:
                tfirst = records
            tbatch.append(text)
            # as the client receives it: a CR ends a data: line, joined
            # back with a LF
            thash = fnv(thash, tb.replace(b"\r", b"\n") + b"\n")
            records += 1
            offset = nxt
        else:
            key = members.get(q["group_by"], "null")
            value = members.get(q["value"])
            value = json.loads(value) if value is not None else None
            overall.add(value)
            if len(key.encode()) > KEY_MAX:
                other.add(value)
            elif key in table:
                table[key].add(value)
            elif len(order) == GROUPS_MAX:
                other.add(value)
            else:
                table[key] = Stats()
                table[key].add(value)
                order.append(key)
            records += 1
            offset = nxt

    if limit and matches >= limit:
        complete(True)
        return ev
    close(True)
    complete()
    return ev


# --- checking a stream ------------------------------------------------------

def parse_stream(body):
    """Events of an SSE body as (id or None, data text); raises on framing."""
    events = []
    if body and not body.endswith(b"\n\n"):
        raise ValueError("the body does not end with a blank line")
    text = body.decode("utf-8")          # every byte sent is UTF-8
    for block in text.split("\n\n"):
        if block == "":
            continue
        if block == ": keepalive":
            continue
        eid = None
        data = []
        for line in block.split("\n"):
            if line.startswith("id: "):
                eid = line[4:]
            elif line.startswith("data: "):
                data.append(line[6:])
            else:
                raise ValueError("unexpected line %r" % line)
        if not data:
            raise ValueError("an event without data: %r" % block)
        events.append((eid, "\n".join(data)))
    return events


ID_RE = re.compile(r"^(0|[1-9][0-9]*)-(0|[1-9][0-9]*)-(0|[1-9][0-9]*)-"
                   r"(0|[1-9][0-9]*)-([mbce])-([0-9a-f]{8})$")


def split_id(eid):
    m = ID_RE.match(eid)
    if not m:
        raise ValueError("malformed id %r" % eid)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)),
            int(m.group(4)), m.group(5)), m.group(6)


def after(events, from_id):
    """What a client resuming after from_id must get (search, transform)."""
    (off, rec, mat, ski, ph), _ = split_id(from_id)
    for i, (eid, _) in enumerate(events):
        if eid == (off, rec, mat, ski, ph):
            return events[i + 1:]
    raise ValueError("id %r is not one of the stream's" % from_id)


def check(body, data, q, from_id=None):
    got = parse_stream(body)
    want = expected(data, q)
    if from_id:
        want = after(want, from_id)
    tags = set()
    problems = []
    for n, ((eid, text), (wid, wdata)) in enumerate(zip(got, want)):
        try:
            d = json.loads(text)
        except ValueError as e:
            problems.append("event %d: not JSON (%s): %r" % (n, e, text))
            continue
        if d.get("type") == "batch":
            # the checksum of the records as received, each found by
            # Python's own decoder in the joined data lines
            dec = json.JSONDecoder()
            i = text.index('"records": [') + len('"records": [')
            h = 2166136261
            while text[i] != "]":
                _, end = dec.raw_decode(text, i)
                h = fnv(h, text[i:end].encode() + b"\n")
                i = end + 2 if text[end] == "," else end
            if "%08x" % h != d.get("checksum"):
                problems.append("event %d: checksum %s, the records "
                                "received hash to %08x"
                                % (n, d.get("checksum"), h))
        if d.get("type") == "complete":
            if not isinstance(d.pop("total_time_ms", None), float):
                problems.append("event %d: no total_time_ms" % n)
        if d.get("type") == "error" and wdata["message"] is None:
            # the reason and byte come from the module's parser
            if not re.match(r"^line %d \(offset %d\) is not valid JSON: .+ "
                            r"at byte \d+$" % (wdata["line"],
                                               wdata["offset"]),
                            d.get("message", "")):
                problems.append("event %d: message %r" % (n, d["message"]))
            d["message"] = None
        if eid is None:
            problems.append("event %d has no id" % n)
            continue
        pos, tag = split_id(eid)
        tags.add(tag)
        if pos != wid:
            problems.append("event %d: id %r, expected %r" % (n, pos, wid))
        if d != wdata:
            problems.append("event %d: got %s\n  expected %s"
                            % (n, json.dumps(d, ensure_ascii=False),
                               json.dumps(wdata, ensure_ascii=False)))
        if len(problems) > 5:
            break
    if len(got) != len(want):
        problems.append("%d events, expected %d" % (len(got), len(want)))
    if len(tags) > 1:
        problems.append("ids carry %d different tags" % len(tags))
    return problems


def main():
    cmd = sys.argv[1]
    if cmd == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif cmd == "check":
        body = open(sys.argv[2], "rb").read()
        data = open(sys.argv[3], "rb").read()
        q = json.loads(sys.argv[4])
        from_id = sys.argv[5] if len(sys.argv) > 5 else None
        problems = check(body, data, q, from_id)
        want = expected(data, q)
        kinds = {}
        for _, d in want:
            kinds[d["type"]] = kinds.get(d["type"], 0) + 1
        if problems:
            print("\n".join(problems))
            sys.exit(1)
        print("ok " + " ".join("%s=%d" % kv for kv in sorted(kinds.items())))
    elif cmd == "ids":
        for eid, _ in parse_stream(open(sys.argv[2], "rb").read()):
            print(eid if eid is not None else "-")
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
