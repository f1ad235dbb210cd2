#!/usr/bin/env python3
"""Independent verifier for a daypass JSON Lines export (log format version 1).

Written from docs/log-format.md alone, with the Python standard library:
    python3 docs/verify_export.py log.jsonl
Exit status 0 when the chain verifies, 1 with the first problem otherwise.
"""
import hashlib
import json
import struct
import sys
from datetime import datetime, timezone


def s(text):
    b = text.encode("utf-8")
    return struct.pack(">I", len(b)) + b


def entry_bytes(e):
    out = bytes([1]) + struct.pack(">Q", e["seq"]) + struct.pack(">q", e["timestamp_ms"])
    out += s(e["actor"]) + s(e["tenant"]) + s(e["kind"])
    keys = sorted(e["details"], key=lambda k: k.encode("utf-8"))
    out += struct.pack(">I", len(keys))
    for k in keys:
        out += s(k) + s(e["details"][k])
    return out + bytes.fromhex(e["prev_hash"])


def rfc3339_ms(ms):
    t = datetime.fromtimestamp(ms / 1000, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def main(path):
    expected_seq, prev = 0, "00" * 32
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            e = json.loads(line)
            if hashlib.sha256(entry_bytes(e)).hexdigest() != e["hash"] or e["time"] != rfc3339_ms(e["timestamp_ms"]):
                return f"line {lineno}: seq {e['seq']}: modified"
            if e["seq"] != expected_seq:
                return f"line {lineno}: seq {e['seq']} where {expected_seq} was expected"
            if e["prev_hash"] != prev:
                return f"line {lineno}: seq {e['seq']}: prev_hash does not link to the previous entry"
            expected_seq, prev = expected_seq + 1, e["hash"]
    print(f"OK: {expected_seq} entries verified, head {prev}")
    return None


if __name__ == "__main__":
    problem = main(sys.argv[1])
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(1)
