#!/usr/bin/env python3
"""Independent verifier for a tile export of the daypass log (a C2SP tlog-tiles tree).

Written from the C2SP specifications (c2sp.org/tlog-tiles, c2sp.org/tlog-checkpoint,
c2sp.org/signed-note) and docs/log-format.md section 14, with the Python standard library:

    python3 docs/verify_tiles.py DIR --log-key log.pub

It checks the checkpoint's Ed25519 signature and origin; reads every entry bundle
the tree size requires (`tile/entries/<N>[.p/<W>]`, entries framed by a big-endian
uint16 length); checks that every level-0 tile holds the RFC 6962 leaf hashes of
its bundle's entries and every higher tile the Merkle Tree Hashes of the full
tiles below; recomputes the tree's root from the leaves with the recursive
definition of RFC 6962 section 2.1 and compares it with the signed root. Over the
entries it also checks what docs/log-format.md sections 2-3 give for free: each
entry's seq (bytes 1-8) is its index and its prev_hash (last 32 bytes) is
SHA-256 of the entry before (the genesis value for entry 0).

Exit status 0 when everything verifies, 1 with the first problem (naming the file
and the hash or entry index) otherwise.
"""

import argparse
import base64
import hashlib
import os
import re
import struct
import sys

# Ed25519 (RFC 8032 section 5.1.7) as written out in the sibling verifier.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_export import ed25519_verify  # noqa: E402

WIDTH = 256  # hashes per full tile, entries per full bundle (tile height 8)
HASH = 32
U64_MAX = 2**64 - 1


class Problem(Exception):
    pass


def sha256(b):
    return hashlib.sha256(b).digest()


def leaf_hash(entry):
    return sha256(b"\x00" + entry)


def node_hash(left, right):
    return sha256(b"\x01" + left + right)


def mth(hashes):
    """RFC 6962 section 2.1 Merkle Tree Hash over already-hashed leaves."""
    n = len(hashes)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(hashes[:k]), mth(hashes[k:]))


def index_path(n):
    """<N>: zero-padded 3-digit groups, all but the last prefixed with x."""
    groups = []
    while True:
        groups.append(n % 1000)
        n //= 1000
        if n == 0:
            break
    groups.reverse()
    return "/".join([f"x{g:03d}" for g in groups[:-1]] + [f"{groups[-1]:03d}"])


def tile_path(level, n, width):
    p = f"tile/{level}/{index_path(n)}"
    return p if width == WIDTH else f"{p}.p/{width}"


def bundle_path(n, width):
    p = f"tile/entries/{index_path(n)}"
    return p if width == WIDTH else f"{p}.p/{width}"


# ------------------------------------------------------- signed checkpoint ---

def b64(text):
    raw = base64.b64decode(text, validate=True)
    if base64.b64encode(raw).decode() != text:
        raise ValueError("not canonical base64")
    return raw


def parse_vkey(vkey):
    """<name>+hex(key ID)+base64(0x01 || public key) (signed-note, Verifier keys)."""
    parts = vkey.strip().split("+", 2)
    if len(parts) != 3:
        raise Problem("--log-key: a verifier key is name+keyid+key")
    name, key_id, key = parts
    try:
        key = b64(key)
    except ValueError:
        raise Problem("--log-key: the key is not base64")
    if len(key) != 33 or key[0] != 0x01:
        raise Problem("--log-key: not an Ed25519 verifier key")
    # key ID = SHA-256(key name || 0x0A || 0x01 || public key)[:4]
    if sha256(name.encode() + b"\n" + key)[:4].hex() != key_id:
        raise Problem("--log-key: the key id does not match the key")
    return name, bytes.fromhex(key_id), key[1:]


def open_checkpoint(note, vkey):
    """(origin, size, root) of a checkpoint note with a valid signature by vkey."""
    name, key_id, public = parse_vkey(vkey)
    split = note.rfind("\n\n")
    if split < 0:
        raise Problem("checkpoint: no blank line between the text and the signatures")
    text, sigs = note[: split + 1], note[split + 2:]
    if not sigs.endswith("\n"):
        raise Problem("checkpoint: the signature lines must end in a newline")
    verified = False
    for line in sigs[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            raise Problem("checkpoint: a signature line starts with an em dash and a space")
        signer, _, blob = line[2:].partition(" ")
        try:
            blob = b64(blob)
        except ValueError:
            raise Problem("checkpoint: a signature is not base64")
        # Unknown keys are ignored (they may be witnesses' cosignatures).
        if signer == name and blob[:4] == key_id:
            verified = verified or ed25519_verify(public, text.encode(), blob[4:])
    if not verified:
        raise Problem(f"checkpoint: no valid signature by {name}")
    lines = text.split("\n")[:-1]
    if len(lines) < 3:
        raise Problem("checkpoint: the text is origin, tree size and root hash")
    origin, size, root = lines[:3]
    if origin != name:
        raise Problem("checkpoint: its origin is not the name of the log's key")
    if not re.fullmatch(r"0|[1-9][0-9]*", size) or int(size) > U64_MAX:
        raise Problem("checkpoint: the tree size is not a decimal number")
    try:
        root = b64(root)
    except ValueError:
        raise Problem("checkpoint: the root hash is not base64")
    if len(root) != HASH:
        raise Problem("checkpoint: the root hash is not 32 bytes")
    return origin, int(size), root


# ------------------------------------------------------------------ tiles ---

def read_file(d, rel, size):
    path = os.path.join(d, *rel.split("/"))
    if not os.path.isfile(path):
        raise Problem(f"{rel}: missing: a tree of {size} entries has it")
    with open(path, "rb") as f:
        return f.read()


def read_tile(d, level, n, width, size):
    rel = tile_path(level, n, width)
    data = read_file(d, rel, size)
    if len(data) != width * HASH:
        raise Problem(f"{rel}: {len(data)} bytes, but a tile of {width} hashes has {width * HASH}")
    return rel, [data[i * HASH:(i + 1) * HASH] for i in range(width)]


def split_bundle(rel, data, width, first):
    entries, at = [], 0
    while at < len(data):
        if at + 2 > len(data):
            raise Problem(f"{rel}: entry {first + len(entries)}: its length is cut off")
        (n,) = struct.unpack(">H", data[at:at + 2])
        if at + 2 + n > len(data):
            raise Problem(f"{rel}: entry {first + len(entries)}: {n} bytes announced, fewer follow")
        entries.append(data[at + 2:at + 2 + n])
        at += 2 + n
    if len(entries) != width:
        raise Problem(f"{rel}: {len(entries)} entries, but the tree puts {width} in this bundle")
    return entries


def verify(d, vkey):
    try:
        with open(os.path.join(d, "checkpoint"), encoding="utf-8") as f:
            note = f.read()
    except FileNotFoundError:
        raise Problem("no checkpoint: not a tile export, or an interrupted one")
    origin, size, root = open_checkpoint(note, vkey)

    leaves = []
    prev = bytes(HASH)
    # Reported after the tiles and the root: those name the file that changed.
    chain_problem = None
    for n in range((size + WIDTH - 1) // WIDTH):
        width = min(WIDTH, size - n * WIDTH)
        rel = bundle_path(n, width)
        entries = split_bundle(rel, read_file(d, rel, size), width, n * WIDTH)
        hashes = [leaf_hash(e) for e in entries]
        trel, tile = read_tile(d, 0, n, width, size)
        for i, (got, want) in enumerate(zip(tile, hashes)):
            if got != want:
                raise Problem(f"{trel}: hash {i}: not the leaf hash of entry {n * WIDTH + i} in {rel}")
        for i, e in enumerate(entries):
            seq = n * WIDTH + i
            if chain_problem is None:
                if len(e) < 1 + 8 + HASH or struct.unpack(">Q", e[1:9])[0] != seq:
                    chain_problem = f"{rel}: entry {seq}: its seq is not its index"
                elif e[-HASH:] != prev:
                    chain_problem = f"{rel}: entry {seq}: broken: its prev_hash is not the hash of the entry before it"
            prev = sha256(e)
        leaves.extend(hashes)

    # Level l+1 holds MTH of each full tile of level l; a partial tile is never
    # hashed into the level above. Tiles exist while size / 256**l >= 1.
    tiles = (size + WIDTH - 1) // WIDTH
    below = leaves
    level = 0
    while True:
        full = [mth(below[i * WIDTH:(i + 1) * WIDTH]) for i in range(len(below) // WIDTH)]
        level += 1
        if not full:
            break
        for n in range((len(full) + WIDTH - 1) // WIDTH):
            want = full[n * WIDTH:(n + 1) * WIDTH]
            trel, tile = read_tile(d, level, n, len(want), size)
            tiles += 1
            for i, (got, w) in enumerate(zip(tile, want)):
                if got != w:
                    raise Problem(f"{trel}: hash {i}: not the root of tile {tile_path(level - 1, n * WIDTH + i, WIDTH)}")
        below = full

    computed = mth(leaves)
    if computed != root:
        raise Problem(f"the tiles' root {computed.hex()} is not the checkpoint's root {root.hex()}")
    if chain_problem is not None:
        raise Problem(chain_problem)
    bundles = (size + WIDTH - 1) // WIDTH
    return f"OK: {size} entries in {bundles} bundles and {tiles} tiles, root {root.hex()} signed by {origin}"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dir", help="the tile tree (from daypass audit export --tiles)")
    ap.add_argument("--log-key", required=True, help="the log's verifier key, or a file holding it")
    args = ap.parse_args(argv)
    vkey = args.log_key
    if os.path.isfile(vkey):
        with open(vkey, encoding="utf-8") as f:
            vkey = f.read()
    try:
        print(verify(args.dir, vkey))
    except Problem as p:
        print(f"{args.dir}: {p}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"{args.dir}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
