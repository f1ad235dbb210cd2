#!/usr/bin/env python3
"""Independent verifier for a daypass JSON Lines export (log format versions 1 and 2).

Written from docs/log-format.md alone, with the Python standard library:
    python3 docs/verify_export.py log.jsonl
    python3 docs/verify_export.py log.jsonl --checkpoint cp.txt --log-key log.pub
The first form checks the hash chain of a full export (sections 2-4). The
second also checks the checkpoint's Ed25519 signature (section 7) and then,
as section 9 says: for a full export (no line has `inclusion`), the chain from
seq 0 and that its first `size` entries hash to the checkpoint's root; for a
tenant-scoped export (every line has `inclusion`), every line's inclusion
proof against that root. An export that mixes the two is refused, and so is
any line with a member section 4 does not list.
Exit status 0 when everything verifies, 1 with the first problem (naming its
line) otherwise.
"""
import argparse
import base64
import hashlib
import itertools
import json
import os
import re
import struct
import sys
from datetime import datetime, timedelta, timezone


# ---------------------------------------------------------------- entries ---

# Section 4: exactly these members, plus `inclusion` in a tenant-scoped export.
MEMBERS = {"seq", "time", "timestamp_ms", "actor", "tenant", "kind", "details", "prev_hash", "hash"}
HEX_HASH = re.compile(r"[0-9a-f]{64}")
U64_MAX, I64_MIN, I64_MAX = 2**64 - 1, -(2**63), 2**63 - 1


class Problem(Exception):
    """The first thing wrong with an export: its line, seq and kind (section 3)."""

    def __init__(self, lineno, seq, kind, detail):
        where = ([f"line {lineno}"] if lineno else []) + ([f"seq {seq}"] if seq is not None else [])
        super().__init__(": ".join(where + [kind, detail]))


def s(text):
    b = text.encode("utf-8")
    return struct.pack(">I", len(b)) + b


def entry_bytes(e):
    sealed = e.get("sealed")
    version = 1 if sealed is None else 2
    out = bytes([version]) + struct.pack(">Q", e["seq"]) + struct.pack(">q", e["timestamp_ms"])
    out += s(e["actor"]) + s(e["tenant"]) + s(e["kind"])
    keys = sorted(e["details"], key=lambda k: k.encode("utf-8"))
    out += struct.pack(">I", len(keys))
    for k in keys:
        out += s(k) + s(e["details"][k])
    if sealed is not None:
        # Section 2.1: the nonce, then the ciphertext as a length-prefixed
        # byte string; `opened` is not hashed.
        ct = bytes.fromhex(sealed["ciphertext"])
        out += bytes.fromhex(sealed["nonce"]) + struct.pack(">I", len(ct)) + ct
    return out + bytes.fromhex(e["prev_hash"])


def rfc3339_ms(ms):
    t = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def unique_members(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError(f"member {k!r} appears twice")
        obj[k] = v
    return obj


def no_constant(name):
    raise ValueError(f"{name} is not JSON")


def is_int(v, lo, hi):
    return type(v) is int and lo <= v <= hi


def is_text(v):
    """A JSON string that is valid Unicode (no lone surrogate escapes)."""
    if type(v) is not str:
        return False
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_line(lineno, raw):
    """One export line as a dict, every member checked against section 4;
    raises Problem (malformed) naming the line otherwise."""

    def malformed(detail, seq=None):
        return Problem(lineno, seq, "malformed", detail)

    try:
        e = json.loads(raw.decode("utf-8"), object_pairs_hook=unique_members,
                       parse_constant=no_constant)
    except (UnicodeDecodeError, ValueError) as err:
        raise malformed(f"not a JSON object: {err}")
    if type(e) is not dict:
        raise malformed("not a JSON object")
    seq = e.get("seq") if is_int(e.get("seq"), 0, U64_MAX) else None
    unknown = sorted(set(e) - MEMBERS - {"inclusion", "sealed", "opened"})
    if unknown:
        raise malformed(f"unknown member {unknown[0]!r} (section 4 lists every member)", seq)
    missing = sorted(MEMBERS - set(e))
    if missing:
        raise malformed(f"missing member {missing[0]!r}", seq)
    if seq is None:
        raise malformed("seq is not an unsigned 64-bit integer")
    if not is_int(e["timestamp_ms"], I64_MIN, I64_MAX):
        raise malformed("timestamp_ms is not a signed 64-bit integer", seq)
    for m in ("time", "actor", "tenant", "kind"):
        if not is_text(e[m]):
            raise malformed(f"{m} is not a string of Unicode text", seq)
    d = e["details"]
    if type(d) is not dict or not all(is_text(k) and is_text(v) for k, v in d.items()):
        raise malformed("details is not an object of Unicode strings", seq)
    for m in ("prev_hash", "hash"):
        if not is_text(e[m]) or not HEX_HASH.fullmatch(e[m]):
            raise malformed(f"{m} is not 64 lowercase hex digits", seq)
    if "sealed" in e:
        sl = e["sealed"]
        if (type(sl) is not dict or set(sl) != {"nonce", "ciphertext"}
                or not all(is_text(v) and re.fullmatch(r"(?:[0-9a-f]{2})*", v) for v in sl.values())
                or len(sl["nonce"]) != 24 or len(sl["ciphertext"]) < 32):
            raise malformed("sealed is not {nonce: 24 hex digits, ciphertext: hex of 16 bytes or more}", seq)
    if "opened" in e:
        o = e["opened"]
        if "sealed" not in e:
            raise malformed("opened without sealed", seq)
        if type(o) is not dict or not all(is_text(k) and is_text(v) for k, v in o.items()):
            raise malformed("opened is not an object of Unicode strings", seq)
        if set(o) & set(d):
            raise malformed("a detail is both in details and in opened", seq)
    if "inclusion" in e:
        p = e["inclusion"]
        if type(p) is not list or not all(is_text(h) and HEX_HASH.fullmatch(h) for h in p):
            raise malformed("inclusion is not an array of 64-lowercase-hex-digit hashes", seq)
    try:
        time = rfc3339_ms(e["timestamp_ms"])
    except OverflowError:
        time = None
    if e["time"] != time:
        raise Problem(lineno, seq, "modified", "time does not match timestamp_ms")
    return e


def read_lines(path):
    """(line number, parsed line) for every non-blank line, streaming."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if raw.strip():
                yield lineno, parse_line(lineno, raw.strip())


# ------------------------------------------------------------------- tree ---

def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_hash(b):
    return sha256(b"\x00" + b)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


class Frontier:
    """MTH of a growing tree: the roots of its maximal complete subtrees."""

    def __init__(self):
        self.size, self.peaks = 0, []

    def push(self, leaf):
        h, n = leaf, self.size
        while n & 1:
            h = node_hash(self.peaks.pop(), h)
            n >>= 1
        self.peaks.append(h)
        self.size += 1

    def root(self):
        if not self.peaks:
            return sha256(b"")
        r = self.peaks[-1]
        for left in reversed(self.peaks[:-1]):
            r = node_hash(left, r)
        return r


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


# ---------------------------------------------------------------- Ed25519 ---
# Signature verification as defined in RFC 8032 section 5.1.7.

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if x & 1 != sign:
        x = P - x
    return x


def point_add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def point_mul(k, pt):
    q = (0, 1, 1, 0)
    while k:
        if k & 1:
            q = point_add(q, pt)
        pt = point_add(pt, pt)
        k >>= 1
    return q


def point_equal(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def decompress(b):
    if len(b) != 32:
        return None
    y = int.from_bytes(b, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


GY = 4 * pow(5, P - 2, P) % P
G = (recover_x(GY, 0), GY, 1, recover_x(GY, 0) * GY % P)


def ed25519_verify(public, msg, sig):
    a, r = decompress(public), decompress(sig[:32])
    if a is None or r is None or len(sig) != 64:
        return False
    k = int.from_bytes(sig[32:], "little")
    if k >= L:
        return False
    h = int.from_bytes(hashlib.sha512(sig[:32] + public + msg).digest(), "little") % L
    return point_equal(point_mul(k, G), point_add(r, point_mul(h, a)))


# ------------------------------------------------------------ checkpoints ---

def b64(text):
    """Standard base64 with padding, in its one canonical form."""
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode() != text:
        raise ValueError("not canonical base64")
    return raw


def parse_vkey(vkey):
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise ValueError("a verifier key is name+keyid+key")
    name, key_id, key = parts
    key = b64(key)
    if len(key) != 33 or key[0] != 1:
        raise ValueError("not an Ed25519 verifier key")
    if sha256(name.encode() + b"\n" + key)[:4].hex() != key_id:
        raise ValueError("key id does not match the key")
    return name, bytes.fromhex(key_id), key[1:]


def open_checkpoint(note, vkey):
    """Returns (size, root) of a checkpoint signed by vkey, or raises."""
    name, key_id, public = parse_vkey(vkey)
    split = note.rfind("\n\n")
    if split < 0:
        raise ValueError("no blank line before the signatures")
    text, sigs = note[: split + 1], note[split + 2:]
    if "\n\n" in text or not sigs.endswith("\n"):
        raise ValueError("malformed note")
    good = False
    for line in sigs.split("\n")[:-1]:
        if not line.startswith("\u2014 ") or " " not in line[2:]:
            raise ValueError("malformed signature line")
        signer, blob = line[2:].split(" ", 1)
        blob = b64(blob)
        if signer == name and blob[:4] == key_id:
            good = good or ed25519_verify(public, text.encode(), blob[4:])
    if not good:
        raise ValueError(f"no valid signature by {name}")
    lines = text.split("\n")
    if len(lines) < 4:
        raise ValueError("a checkpoint is origin, size and root")
    origin, size, root = lines[:3]
    if origin != name:
        raise ValueError("origin is not the key's name")
    if not re.fullmatch(r"0|[1-9][0-9]*", size) or int(size) > U64_MAX:
        raise ValueError("tree size is not a decimal number")
    root = b64(root)
    if len(root) != 32:
        raise ValueError("root is not a SHA-256 hash")
    return int(size), root


# ------------------------------------------------------------------- main ---

def check_hash(lineno, e):
    b = entry_bytes(e)
    if sha256(b).hex() != e["hash"]:
        raise Problem(lineno, e["seq"], "modified", "the entry's content does not match its hash")
    return b


def verify(path, checkpoint=None):
    """Verifies the export at path; returns the OK line, raises Problem."""
    lines = read_lines(path)
    first = next(lines, None)
    if first is None:
        raise Problem(None, None, "malformed", "no log entries in it (one JSON line per entry)")
    if "inclusion" in first[1]:
        return verify_tenant(first, lines, checkpoint)
    return verify_full(first, lines, checkpoint)


def mixed(lineno, e, first_lineno, first_has):
    """Section 9: an export is full or tenant-scoped, never both."""
    this, that = ("has no", "does") if first_has else ("has an", "does not")
    return Problem(lineno, e["seq"], "malformed",
                   f"this line {this} inclusion proof but line {first_lineno} {that}: an export "
                   "is either full (no line has one) or tenant-scoped (every line has one)")


def verify_full(first, lines, checkpoint):
    """Section 3 from seq 0; with a checkpoint of size n (section 9), the MTH
    of entries 0..n-1 must be its root, later entries are chain-checked only."""
    size, root = checkpoint if checkpoint else (None, None)
    expected, prev, tree, lineno, last_in_tree = 0, "00" * 32, Frontier(), 0, 0
    for lineno, e in itertools.chain([first], lines):
        seq = e["seq"]
        if "inclusion" in e:
            raise mixed(lineno, e, first[0], False)
        b = check_hash(lineno, e)
        if seq != expected:
            kind = ("inserted" if seq + 1 == expected else
                    "reordered" if seq < expected else "deleted")
            raise Problem(lineno, seq, kind, f"seq {seq} where {expected} was expected"
                          + (" (an export must start at seq 0)" if expected == 0 else ""))
        if e["prev_hash"] != prev:
            raise Problem(lineno, seq, "broken",
                          "the first entry's prev_hash is not 32 zero bytes" if seq == 0 else
                          f"prev_hash does not match the hash of entry {seq - 1}")
        if size is not None and seq < size:
            tree.push(leaf_hash(b))
            last_in_tree = lineno
        expected, prev = expected + 1, e["hash"]
    summary = f"OK: {expected} entries verified, head {prev}"
    if checkpoint is None:
        return summary
    if tree.size < size:
        raise Problem(None, tree.size, "deleted",
                      f"the export ends at seq {tree.size} (line {lineno}) but the checkpoint "
                      f"covers {size} entries")
    if tree.root() != root:
        raise Problem(None, None, "unproven",
                      f"the first {size} entries (up to line {last_in_tree}) do not hash to the "
                      "checkpoint's root: this is not the log the checkpoint signed")
    summary += f"; the first {size} hash to the checkpoint's root"
    if expected > size:
        summary += f" ({expected - size} later entries are chain-checked only)"
    return summary


def verify_tenant(first, lines, checkpoint):
    """Section 9: every line proven included in the checkpoint's tree."""
    if checkpoint is None:
        raise Problem(first[0], first[1]["seq"], "malformed",
                      "a tenant-scoped export needs --checkpoint and --log-key")
    size, root = checkpoint
    proven, last = 0, None
    for lineno, e in itertools.chain([first], lines):
        seq = e["seq"]
        if "inclusion" not in e:
            raise mixed(lineno, e, first[0], True)
        if last is not None and seq <= last:
            raise Problem(lineno, seq, "reordered",
                          f"seq {seq} follows seq {last}: entries must ascend")
        b = check_hash(lineno, e)
        if seq >= size:
            raise Problem(lineno, seq, "unproven",
                          f"seq {seq} is beyond the checkpoint's {size} entries")
        proof = [bytes.fromhex(h) for h in e["inclusion"]]
        if not verify_inclusion(leaf_hash(b), seq, size, proof, root):
            raise Problem(lineno, seq, "unproven",
                          "its inclusion proof fails: the log did not sign this entry")
        last, proven = seq, proven + 1
    return f"OK: {proven} entries proven included in the tree of {size} entries"


def main(argv):
    ap = argparse.ArgumentParser(description="Verify a daypass JSON Lines export.")
    ap.add_argument("export")
    ap.add_argument("--checkpoint", help="the signed checkpoint (a file, or the note itself)")
    ap.add_argument("--log-key", help="the log's verifier key, log.pub (a file, or the key itself)")
    args = ap.parse_args(argv)
    if (args.checkpoint is None) != (args.log_key is None):
        ap.error("--checkpoint and --log-key go together")
    cp = None
    if args.checkpoint is not None:
        try:
            cp = open_checkpoint(read_arg(args.checkpoint), read_arg(args.log_key))
        except (OSError, ValueError) as err:
            print(f"checkpoint: {err}", file=sys.stderr)
            return 1
    try:
        print(verify(args.export, cp))
    except Problem as p:
        print(f"{args.export}: {p}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"{args.export}: {err}", file=sys.stderr)
        return 1
    return 0


def read_arg(value):
    """The file's text if value names a file, else value itself."""
    if os.path.isfile(value):
        with open(value, encoding="utf-8") as f:
            return f.read()
    return value


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
