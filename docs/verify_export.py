#!/usr/bin/env python3
"""Independent verifier for a daypass JSON Lines export (log format version 1).

Written from docs/log-format.md alone, with the Python standard library:
    python3 docs/verify_export.py log.jsonl
    python3 docs/verify_export.py log.jsonl --checkpoint cp.txt --log-key log.pub
The first form checks the hash chain (sections 2-4). The second also checks
the checkpoint's Ed25519 signature (section 7) and either the Merkle root of a
full export or every inclusion proof of a tenant-scoped one (sections 6-9).
Exit status 0 when everything verifies, 1 with the first problem otherwise.
"""
import base64
import hashlib
import json
import os
import struct
import sys
from datetime import datetime, timezone


# ---------------------------------------------------------------- entries ---

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

def parse_vkey(vkey):
    name, key_id, key = vkey.strip().split("+", 2)
    key = base64.b64decode(key, validate=True)
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
        raise ValueError("no signature lines")
    text, sigs = note[: split + 1], note[split + 2:]
    good = False
    for line in sigs.split("\n")[:-1]:
        if not line.startswith("\u2014 "):
            raise ValueError("malformed signature line")
        signer, blob = line[2:].split(" ", 1)
        blob = base64.b64decode(blob, validate=True)
        if signer == name and blob[:4] == key_id:
            good = good or ed25519_verify(public, text.encode(), blob[4:])
    if not good:
        raise ValueError(f"no valid signature by {name}")
    origin, size, root = text.split("\n")[:3]
    if origin != name:
        raise ValueError("origin is not the key's name")
    return int(size), base64.b64decode(root, validate=True)


# ------------------------------------------------------------------- main ---

def main(path, checkpoint=None):
    expected_seq, prev = 0, "00" * 32
    tree, proven, last_seq = Frontier(), 0, -1
    size, root = checkpoint if checkpoint else (None, None)
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            e = json.loads(line)
            b = entry_bytes(e)
            if sha256(b).hex() != e["hash"] or e["time"] != rfc3339_ms(e["timestamp_ms"]):
                return f"line {lineno}: seq {e['seq']}: modified"
            if "inclusion" in e:
                if checkpoint is None:
                    return f"line {lineno}: a tenant export needs --checkpoint and --log-key"
                proof = [bytes.fromhex(h) for h in e["inclusion"]]
                if e["seq"] <= last_seq:
                    return f"line {lineno}: seq {e['seq']}: out of order"
                if not verify_inclusion(leaf_hash(b), e["seq"], size, proof, root):
                    return f"line {lineno}: seq {e['seq']}: unproven"
                last_seq, proven = e["seq"], proven + 1
                continue
            if e["seq"] != expected_seq:
                return f"line {lineno}: seq {e['seq']} where {expected_seq} was expected"
            if e["prev_hash"] != prev:
                return f"line {lineno}: seq {e['seq']}: prev_hash does not link to the previous entry"
            if size is not None and e["seq"] < size:
                tree.push(leaf_hash(b))
            expected_seq, prev = expected_seq + 1, e["hash"]
    if proven:
        print(f"OK: {proven} entries proven included in the tree of {size} entries")
        return None
    summary = f"OK: {expected_seq} entries verified, head {prev}"
    if checkpoint is not None:
        if tree.size < size:
            return f"the export ends at seq {tree.size} but the checkpoint covers {size} entries"
        if tree.root() != root:
            return f"unproven: the first {size} entries do not hash to the checkpoint's root"
        summary += f"; the first {size} hash to the checkpoint's root"
    print(summary)
    return None


def read_arg(value):
    return open(value, encoding="utf-8").read() if os.path.isfile(value) else value


if __name__ == "__main__":
    args = sys.argv[1:]
    cp = None
    if "--checkpoint" in args:
        note = read_arg(args[args.index("--checkpoint") + 1])
        vkey = read_arg(args[args.index("--log-key") + 1])
        try:
            cp = open_checkpoint(note, vkey)
        except ValueError as err:
            print(f"checkpoint: {err}", file=sys.stderr)
            sys.exit(1)
    problem = main(args[0], cp)
    if problem:
        print(problem, file=sys.stderr)
        sys.exit(1)
