#!/usr/bin/env python3
"""What a daypass tenant (or an auditor working for one) writes in Python.

It talks to the broker over mutual TLS with the tenant's own certificate and:

1. fetches the broker's verification keys (GateService.GetVerificationKeys);
2. asks the broker whether a grant may act now (GrantService.ValidateGrant);
3. verifies the grant's token OFFLINE with an ordinary PASETO library
   (pyseto): v4.public, implicit assertion b"daypass-grant-v1", the key
   picked by the footer's "kid", then the claims (iss, aud, jti, nbf, exp and
   the key's validity window);
4. fetches the tenant's signed revocation list (GateService.GetRevocations),
   verifies it the same way (implicit assertion b"daypass-revocations-v1")
   and looks the grant up in it;
5. pages through the tenant's audit entries (AuditService.GetTenantEntries),
   checks each entry's hash and its inclusion proof against the page's
   checkpoint (and, with --log-key, the checkpoint's signature), and prints
   them.

Progress and the entries go to stderr; stdout carries only the final JSON
summary, so it can be piped to jq.

Exit status:
  0  the grant is admitted: allowed online, token valid offline, not revoked;
  2  everything verified, but the grant is not admitted (denied online or
     listed as revoked); the summary is still printed;
  1  something failed or could not be verified (a bad signature, a tampered
     token, a claim that does not match, an RPC error); one line on stderr
     says what.

With --tamper the token is altered before the offline check (its "exp" is
pushed a year out, the signature kept), which must be refused: the script
then exits 1 saying the signature is invalid.

Stubs come from proto/daypass/v1/daypass.proto, generated with grpc_tools
(either beforehand, passed with --stubs, or at run time into a temporary
directory). See README.md beside this file.
"""

import argparse
import base64
import binascii
import hashlib
import importlib
import json
import os
import struct
import sys
import tempfile
from datetime import datetime, timedelta, timezone

import grpc
import pyseto
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GRANT_ASSERTION = b"daypass-grant-v1"
REVOCATIONS_ASSERTION = b"daypass-revocations-v1"
RPC_TIMEOUT_SECS = 10

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "proto"))


class Failure(Exception):
    """Something could not be verified: the script exits 1 with this message."""


def main(argv=None):
    args = parse_args(argv)
    try:
        summary = run(args)
    except Failure as err:
        print(f"tenant_example: FAILED: {err}", file=sys.stderr)
        return 1
    print(json.dumps(summary, sort_keys=True))
    admitted = summary["online_allowed"] and summary["offline_valid"] and not summary["revoked"]
    return 0 if admitted else 2


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Check a daypass grant as a tenant: online, offline, revocations, audit log."
    )
    p.add_argument("--server", default="localhost:50051",
                   help="broker address, host:port or https://host:port (default localhost:50051)")
    p.add_argument("--server-name", default=None,
                   help="name to expect in the server certificate when it differs from the "
                        "host in --server (e.g. localhost when connecting to 127.0.0.1)")
    p.add_argument("--ca", required=True, help="PEM file: the CA that issued the broker's certificate")
    p.add_argument("--cert", required=True, help="PEM file: this tenant's client certificate")
    p.add_argument("--key", required=True, help="PEM file: this tenant's private key")
    p.add_argument("--tenant", default=None,
                   help="this tenant's name; checked against the broker's WhoAmI "
                        "(default: the name WhoAmI reports)")
    p.add_argument("--grant-id", required=True, help="the grant the engineer presents")
    token = p.add_mutually_exclusive_group(required=True)
    token.add_argument("--token", help="the grant token (v4.public.…) the engineer presents")
    token.add_argument("--token-file", help="a file holding the grant token")
    p.add_argument("--log-key", default=None,
                   help="the broker's log verifier key (log.pub, name+id+key): also verify "
                        "the checkpoint's signature")
    p.add_argument("--page-size", type=int, default=0,
                   help="audit entries per GetTenantEntries call (0: the server's maximum, 500)")
    p.add_argument("--max-staleness", type=float, default=30.0,
                   help="refuse a revocation list older than this many seconds (default 30)")
    p.add_argument("--stubs", default=None,
                   help="directory holding daypass/v1/daypass_pb2*.py (default: generate them "
                        "now into a temporary directory)")
    p.add_argument("--proto-dir", default=DEFAULT_PROTO_DIR,
                   help="where daypass/v1/daypass.proto is, for generating stubs")
    p.add_argument("--tamper", action="store_true",
                   help="negative test: alter the token before verifying it; it must be refused")
    return p.parse_args(argv)


def run(args):
    pb2, pb2_grpc = load_stubs(args.stubs, args.proto_dir)
    token = read_token(args)
    if args.tamper:
        token = tamper(token)
        log("tampered with the token: exp pushed one year out, signature kept")

    channel = connect(args)
    staff = pb2_grpc.StaffServiceStub(channel)
    gate = pb2_grpc.GateServiceStub(channel)
    grants = pb2_grpc.GrantServiceStub(channel)
    audit = pb2_grpc.AuditServiceStub(channel)

    me = call("WhoAmI", staff.WhoAmI, pb2.WhoAmIRequest())
    if me.kind != "tenant":
        raise Failure(f"the certificate is for a {me.kind} ({me.principal}), not a tenant")
    if args.tenant is not None and args.tenant != me.name:
        raise Failure(f"the broker knows this certificate as tenant {me.name!r}, not {args.tenant!r}")
    tenant = me.name
    log(f"connected as {me.principal}")

    # (1) The broker's keys.
    keys = call("GetVerificationKeys", gate.GetVerificationKeys, pb2.GetVerificationKeysRequest())
    token_keys = token_key_table(keys)
    issuer = f"spiffe://{keys.trust_domain}"
    log(f"verification keys: {len(token_keys)} token key(s) "
        f"[{', '.join(sorted(token_keys))}], trust domain {keys.trust_domain}")

    # (2) Online.
    v = call("ValidateGrant", grants.ValidateGrant, pb2.ValidateGrantRequest(grant_id=args.grant_id))
    deny = None if v.allowed else pb2.DenyReason.Name(v.deny_reason)
    log(f"online: {'ALLOW' if v.allowed else 'DENY ' + deny} grant {args.grant_id}"
        f" (logged as #{v.log_seq})")

    # (3) Offline: the token alone, with the published keys.
    now = datetime.now(timezone.utc)
    claims = open_token(token, token_keys, GRANT_ASSERTION, now, "grant token")
    check_grant_claims(claims, issuer, tenant, args.grant_id, now)
    log(f"offline: token valid for {claims['sub']} on grant {claims['jti']} until {claims['exp']}")

    # (4) The signed revocation list.
    rl = call("GetRevocations", gate.GetRevocations, pb2.GetRevocationsRequest())
    now = datetime.now(timezone.utc)
    revocations = open_token(rl.token, token_keys, REVOCATIONS_ASSERTION, now, "revocation list")
    revoked_ids = check_revocations(revocations, rl, issuer, tenant, now, args.max_staleness)
    revoked = args.grant_id in revoked_ids
    log(f"revocations: list #{revocations['seq']} issued {revocations['iat']} "
        f"names {len(revoked_ids)} grant(s); {args.grant_id} "
        f"{'IS REVOKED' if revoked else 'is not revoked'}")

    # (5) The tenant's audit entries, page by page, each proven in the log.
    vkey = read_file(args.log_key).decode("utf-8") if args.log_key else None
    entries, tree_size, signed = tenant_entries(pb2, audit, args.page_size, vkey)
    for e in entries:
        details = " ".join(f"{k}={e.details[k]}" for k in sorted(e.details))
        log(f"  #{e.seq} {rfc3339_ms(e.timestamp_ms)} {e.kind:<22} {e.actor} {details}")
    log(f"audit: {len(entries)} entries of {tenant}, each proven included in the log's tree "
        f"of {tree_size} entries" + (" (checkpoint signature verified)" if signed else ""))

    kinds = []
    for e in entries:
        if e.kind not in kinds:
            kinds.append(e.kind)
    return {
        "tenant": tenant,
        "grant_id": args.grant_id,
        "online_allowed": v.allowed,
        "deny_reason": deny,
        "offline_valid": True,
        "holder": claims["sub"],
        "expires_at": claims["exp"],
        "revoked": revoked,
        "revocation_seq": revocations["seq"],
        "revoked_grant_ids": sorted(revoked_ids),
        "entries": len(entries),
        "kinds": kinds,
        "grant_kinds": [e.kind for e in entries if e.details.get("grant") == args.grant_id],
        "tree_size": tree_size,
        "checkpoint_signature_verified": signed,
    }


# ------------------------------------------------------------ connection ---

def load_stubs(stubs_dir, proto_dir):
    """Imports the generated modules, generating them first if needed."""
    if stubs_dir is None:
        # Kept for the life of the process: the modules are imported from it.
        global _STUBS_TMP
        _STUBS_TMP = tempfile.TemporaryDirectory(prefix="daypass-stubs-")
        stubs_dir = _STUBS_TMP.name
        generate_stubs(proto_dir, stubs_dir)
    sys.path.insert(0, os.path.abspath(stubs_dir))
    try:
        pb2 = importlib.import_module("daypass.v1.daypass_pb2")
        pb2_grpc = importlib.import_module("daypass.v1.daypass_pb2_grpc")
    except ImportError as err:
        raise Failure(f"cannot import the stubs from {stubs_dir}: {err} "
                      "(generate them with grpc_tools.protoc, see README.md)") from err
    return pb2, pb2_grpc


def generate_stubs(proto_dir, out_dir):
    from grpc_tools import protoc  # only needed when generating

    proto = os.path.join(proto_dir, "daypass", "v1", "daypass.proto")
    if not os.path.isfile(proto):
        raise Failure(f"{proto} not found: pass --proto-dir (the repository's proto/) or --stubs")
    rc = protoc.main([
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        proto,
    ])
    if rc != 0:
        raise Failure(f"grpc_tools.protoc failed on {proto} (exit {rc})")


def connect(args):
    target = args.server
    for scheme in ("https://", "http://"):
        if target.startswith(scheme):
            target = target[len(scheme):]
    target = target.rstrip("/")
    creds = grpc.ssl_channel_credentials(
        root_certificates=read_file(args.ca),
        private_key=read_file(args.key),
        certificate_chain=read_file(args.cert),
    )
    options = []
    if args.server_name:
        options.append(("grpc.ssl_target_name_override", args.server_name))
    return grpc.secure_channel(target, creds, options=options)


def call(name, method, request):
    try:
        return method(request, timeout=RPC_TIMEOUT_SECS)
    except grpc.RpcError as err:
        raise Failure(f"{name}: {err.code().name}: {err.details()}") from err


# ---------------------------------------------------------------- tokens ---

def token_key_table(keys):
    """kid -> (raw public key, retired_at, verify_until), each id checked."""
    table = {}
    for k in keys.token_keys:
        if len(k.public_key) != 32:
            raise Failure(f"token key {k.key_id} is not a 32-byte Ed25519 key")
        if hashlib.sha256(k.public_key).digest()[:8].hex() != k.key_id:
            raise Failure(f"token key id {k.key_id} does not match its key")
        table[k.key_id] = (
            bytes(k.public_key),
            from_ms(k.retired_at_ms) if k.retired_at_ms else None,
            from_ms(k.verify_until_ms) if k.verify_until_ms else None,
        )
    if not table:
        raise Failure("the broker published no token keys")
    return table


def open_token(token, keys, assertion, now, what):
    """Verifies a v4.public token with the key its footer names; returns its claims."""
    kid = untrusted_kid(token, what)
    if kid not in keys:
        raise Failure(f"{what}: signed by unknown key {kid!r}")
    public, retired_at, verify_until = keys[kid]
    key = pyseto.Key.from_asymmetric_key_params(version=4, x=public)
    try:
        decoded = pyseto.decode(key, token, implicit_assertion=assertion)
    except pyseto.VerifyError as err:
        raise Failure(f"{what}: REJECTED: the signature is invalid for key {kid} "
                      f"(the token was altered, forged, or is not a {assertion.decode()} token): "
                      f"{err}") from err
    except (ValueError, pyseto.PysetoError) as err:
        raise Failure(f"{what}: REJECTED: malformed token: {err}") from err
    try:
        claims = json.loads(decoded.payload)
    except ValueError as err:
        raise Failure(f"{what}: payload is not JSON: {err}") from err
    if not isinstance(claims, dict):
        raise Failure(f"{what}: payload is not a JSON object")
    iat = parse_time(claims, "iat", what)
    if verify_until is not None and now >= verify_until:
        raise Failure(f"{what}: key {kid} is no longer accepted (rotated out)")
    if retired_at is not None and iat > retired_at:
        raise Failure(f"{what}: key {kid} signed it after the key was retired")
    return claims


def untrusted_kid(token, what):
    """The footer's "kid", read WITHOUT verification, only to pick the key."""
    parts = token.split(".")
    if len(parts) != 4 or parts[:2] != ["v4", "public"]:
        raise Failure(f"{what}: REJECTED: not a v4.public token with a footer")
    try:
        footer = json.loads(b64url_decode(parts[3]))
        kid = footer["kid"]
    except (ValueError, KeyError, TypeError) as err:
        raise Failure(f"{what}: REJECTED: the footer is not {{\"kid\": ...}}: {err}") from err
    if not isinstance(kid, str):
        raise Failure(f"{what}: REJECTED: the footer's kid is not a string")
    return kid


def check_grant_claims(c, issuer, tenant, grant_id, now):
    what = "grant token"
    if c.get("iss") != issuer:
        raise Failure(f"{what}: issued by {c.get('iss')!r}, not {issuer!r}")
    if c.get("aud") != tenant:
        raise Failure(f"{what}: for tenant {c.get('aud')!r}, not {tenant!r}")
    if c.get("jti") != grant_id:
        raise Failure(f"{what}: for grant {c.get('jti')!r}, not {grant_id!r}")
    if not isinstance(c.get("sub"), str) or not c["sub"].startswith(issuer + "/staff/"):
        raise Failure(f"{what}: holder {c.get('sub')!r} is not a staff principal of {issuer}")
    nbf, exp = parse_time(c, "nbf", what), parse_time(c, "exp", what)
    if now < nbf:
        raise Failure(f"{what}: not valid before {c['nbf']}")
    if now >= exp:
        raise Failure(f"{what}: expired at {c['exp']}")


def check_revocations(r, rl, issuer, tenant, now, max_staleness):
    what = "revocation list"
    if r.get("iss") != issuer:
        raise Failure(f"{what}: issued by {r.get('iss')!r}, not {issuer!r}")
    if r.get("aud") != tenant:
        raise Failure(f"{what}: for tenant {r.get('aud')!r}, not {tenant!r}")
    if not isinstance(r.get("seq"), int) or not isinstance(r.get("revoked"), list):
        raise Failure(f"{what}: payload lacks seq or revoked")
    iat = parse_time(r, "iat", what)
    age = (now - iat).total_seconds()
    if age > max_staleness:
        raise Failure(f"{what}: issued {age:.1f} s ago, older than the limit of "
                      f"{max_staleness} s: check the clocks or the broker")
    if age < -max_staleness:
        raise Failure(f"{what}: issued {-age:.1f} s in the future: check the clocks")
    ids = set()
    for item in r["revoked"]:
        if not isinstance(item, dict) or not isinstance(item.get("jti"), str):
            raise Failure(f"{what}: malformed entry {item!r}")
        parse_time(item, "exp", what)
        ids.add(item["jti"])
    # The response's plain fields are a display copy; they must match what is signed.
    if set(rl.revoked_grant_ids) != ids or rl.seq != r["seq"]:
        raise Failure(f"{what}: the response's display fields differ from the signed list")
    return ids


def tamper(token):
    """The token with its "exp" claim moved a year out and the old signature."""
    parts = token.split(".")
    if len(parts) < 3 or parts[:2] != ["v4", "public"]:
        raise Failure("--tamper: the token is not a v4.public token")
    body = b64url_decode(parts[2])
    message, signature = body[:-64], body[-64:]
    claims = json.loads(message)
    exp = datetime.fromisoformat(claims["exp"]) + timedelta(days=365)
    claims["exp"] = rfc3339_ms(int(exp.timestamp() * 1000))
    forged = json.dumps(claims, separators=(",", ":")).encode()
    parts[2] = b64url_encode(forged + signature)
    return ".".join(parts)


# ----------------------------------------------------------------- audit ---

def tenant_entries(pb2, audit, page_size, vkey):
    """Every entry in the caller's scope, each proven in one checkpoint's tree."""
    entries, from_seq, tree_size, root, signed = [], 0, 0, None, False
    while True:
        page = call("GetTenantEntries", audit.GetTenantEntries, pb2.GetTenantEntriesRequest(
            from_seq=from_seq, limit=page_size, tree_size=tree_size))
        if root is None:
            # Every later page is asked for (and proven against) the first page's tree.
            tree_size = page.tree_size
            size, root = checkpoint_root(page.checkpoint)
            if size != tree_size:
                raise Failure(f"checkpoint is for {size} entries, the response says {tree_size}")
            if vkey is not None:
                verify_checkpoint_signature(page.checkpoint, vkey)
                signed = True
        elif page.tree_size != tree_size:
            raise Failure(f"GetTenantEntries answered for tree {page.tree_size}, asked {tree_size}")
        for pe in page.entries:
            e = pe.entry
            if entries and e.seq <= entries[-1].seq:
                raise Failure(f"audit entry #{e.seq} out of order")
            b = entry_bytes(e)
            if hashlib.sha256(b).digest() != e.hash:
                raise Failure(f"audit entry #{e.seq}: its hash does not match its contents")
            leaf = hashlib.sha256(b"\x00" + b).digest()
            if not verify_inclusion(leaf, e.seq, tree_size, list(pe.inclusion), root):
                raise Failure(f"audit entry #{e.seq}: not proven included in the tree of {tree_size}")
            entries.append(e)
        if page.next_seq == 0:
            return entries, tree_size, signed
        if page.next_seq <= from_seq:
            raise Failure(f"GetTenantEntries: next page {page.next_seq} does not move past {from_seq}")
        from_seq = page.next_seq


def entry_bytes(e):
    """The canonical bytes of an entry (docs/log-format.md §2, and §2.1 for
    version 2: the opened details are shown but not encoded)."""
    def s(text):
        b = text.encode("utf-8")
        return struct.pack(">I", len(b)) + b

    sealed = len(e.sealed_nonce) > 0
    out = bytes([2 if sealed else 1]) + struct.pack(">Q", e.seq) + struct.pack(">q", e.timestamp_ms)
    out += s(e.actor) + s(e.tenant) + s(e.kind)
    opened = set(e.opened)
    keys = sorted((k for k in e.details if k not in opened), key=lambda k: k.encode("utf-8"))
    out += struct.pack(">I", len(keys))
    for k in keys:
        out += s(k) + s(e.details[k])
    if sealed:
        ct = bytes(e.sealed_ciphertext)
        out += bytes(e.sealed_nonce) + struct.pack(">I", len(ct)) + ct
    return out + bytes(e.prev_hash)


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


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


def checkpoint_root(note):
    """(size, root hash) from a checkpoint note's body: origin, size, base64 root."""
    try:
        _origin, size, root = note.split("\n")[:3]
        return int(size), base64.b64decode(root, validate=True)
    except (ValueError, binascii.Error) as err:
        raise Failure(f"malformed checkpoint: {err}") from err


def verify_checkpoint_signature(note, vkey):
    """A C2SP signed note signed by the log key vkey (name+hex id+base64(0x01 || key))."""
    try:
        name, key_id, key = vkey.strip().split("+", 2)
        key = base64.b64decode(key, validate=True)
    except (ValueError, binascii.Error) as err:
        raise Failure(f"--log-key: not a verifier key: {err}") from err
    if len(key) != 33 or key[0] != 1:
        raise Failure("--log-key: not an Ed25519 verifier key")
    public = Ed25519PublicKey.from_public_bytes(key[1:])
    split = note.rfind("\n\n")
    if split < 0:
        raise Failure("checkpoint has no signature lines")
    text, sigs = note[: split + 1], note[split + 2:]
    if text.split("\n")[0] != name:
        raise Failure(f"checkpoint origin is not the log key's name {name!r}")
    for line in sigs.split("\n"):
        if not line.startswith("\u2014 "):
            continue
        signer, _, blob = line[2:].partition(" ")
        try:
            blob = base64.b64decode(blob, validate=True)
        except binascii.Error:
            continue
        if signer == name and blob[:4].hex() == key_id:
            try:
                public.verify(blob[4:], text.encode("utf-8"))
                return
            except InvalidSignature:
                pass
    raise Failure(f"checkpoint carries no valid signature by {name}")


# --------------------------------------------------------------- helpers ---

def read_token(args):
    token = args.token if args.token is not None else read_file(args.token_file).decode("utf-8")
    return token.strip()


def read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise Failure(f"cannot read {path}: {err.strerror}") from err


def parse_time(claims, field, what):
    value = claims.get(field)
    try:
        t = datetime.fromisoformat(value)
    except (TypeError, ValueError) as err:
        raise Failure(f"{what}: {field} {value!r} is not an RFC 3339 time") from err
    if t.tzinfo is None:
        raise Failure(f"{what}: {field} {value!r} has no time zone")
    return t


def from_ms(ms):
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def rfc3339_ms(ms):
    t = datetime.fromtimestamp(ms // 1000, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def b64url_decode(text):
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as err:
        raise Failure(f"not base64url: {err}") from err


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def log(line):
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
