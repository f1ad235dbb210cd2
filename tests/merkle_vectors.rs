//! `daypass::audit::merkle` against the published RFC 6962 test vectors
//! (roots, inclusion and consistency proofs of the standard 8-leaf tree of
//! certificate transparency) and against a reference written here straight
//! from the RFC's recursive definitions (MTH, PATH, PROOF/SUBPROOF), hashing
//! with `ring` directly: exhaustively for every tree of up to 64 leaves, and
//! with proptest for random trees of up to 2000 leaves, including tampered
//! leaves, proofs, roots, indexes and sizes.

use daypass::audit::{
    Hash,
    merkle::{
        MemoryTree, NodeId, Nodes, ProofError, consistency_proof, empty_root, inclusion_proof,
        leaf_hash, node_hash, verify_consistency, verify_inclusion,
    },
};
use proptest::prelude::*;
use ring::digest::{SHA256, digest};

// ---------------------------------------------------------------------------
// Published vectors.
// ---------------------------------------------------------------------------

/// Leaf inputs (hex) of the standard test tree.
/// Source: github.com/transparency-dev/merkle, `testonly/constants.go`
/// (`LeafInputs`), identical to `leaves` in `proof/verify_test.go`.
const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Hashes of every complete subtree of the 8-leaf tree, by level then index.
/// Source: github.com/transparency-dev/merkle, `testonly/constants.go`
/// (`NodeHashes`).
const NODE_HASHES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// Root of the empty tree, SHA-256 of nothing.
/// Source: github.com/transparency-dev/merkle, `testonly/constants.go`
/// (`EmptyRootHash`) and `proof/verify_test.go` (`sha256EmptyTreeHash`).
const EMPTY_ROOT: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Roots of the trees of the first 1..=8 leaves (`ROOTS[n - 1]` is size n).
/// Source: github.com/transparency-dev/merkle, `proof/verify_test.go`
/// (`roots`), identical to `RootHashes()[1..]` in `testonly/constants.go`.
const ROOTS: [&str; 8] = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// Published inclusion proofs: (leaf, size, path). The source numbers leaves
/// from 1 (its tests use `p.leaf-1`), so the leaf index is `leaf - 1`; its
/// `{0, 0, nil}` entry is the invalid one its own test skips.
/// Source: github.com/transparency-dev/merkle, `proof/verify_test.go`
/// (`inclusionProofs`).
const INCLUSION_PROOFS: [(u64, u64, &[&str]); 6] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        3,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        2,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    // Not in the source table: the path of the last leaf of the 8-leaf tree,
    // made of the published node hashes `NodeHashes()[0][6]`, `[1][2]`,
    // `[2][0]` (testonly/constants.go).
    (
        8,
        8,
        &[
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// Published consistency proofs: (old size, new size, proof).
/// Source: github.com/transparency-dev/merkle, `proof/verify_test.go`
/// (`consistencyProofs`).
const CONSISTENCY_PROOFS: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

/// An arbitrary hash that is no node of any test tree.
/// Source: github.com/transparency-dev/merkle, `proof/verify_test.go`
/// (`sha256SomeHash`).
const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

fn h(hex_str: &str) -> Hash {
    let bytes = hex::decode(hex_str).expect("test vector is hex");
    bytes
        .as_slice()
        .try_into()
        .expect("test vector is 32 bytes")
}

fn hs(hex_strs: &[&str]) -> Vec<Hash> {
    hex_strs.iter().map(|s| h(s)).collect()
}

fn vector_leaves() -> Vec<Vec<u8>> {
    LEAF_INPUTS
        .iter()
        .map(|s| hex::decode(s).expect("leaf input is hex"))
        .collect()
}

fn vector_tree() -> MemoryTree {
    let mut tree = MemoryTree::new();
    for leaf in vector_leaves() {
        tree.push_entry(&leaf);
    }
    tree
}

// ---------------------------------------------------------------------------
// Reference implementation, from the RFC 6962 §2.1 definitions, hashing with
// `ring` directly (not through the module under test).
// ---------------------------------------------------------------------------

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut buf = Vec::new();
    for p in parts {
        buf.extend_from_slice(p);
    }
    digest(&SHA256, &buf)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

fn ref_leaf(data: &[u8]) -> Hash {
    sha256(&[&[0x00], data])
}

fn ref_node(left: &Hash, right: &Hash) -> Hash {
    sha256(&[&[0x01], left, right])
}

/// The largest power of two smaller than `n` (n > 1), by counting up.
fn ref_split(n: usize) -> usize {
    assert!(n > 1);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH(D[n]).
fn ref_mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => sha256(&[]),
        1 => leaves[0],
        n => {
            let k = ref_split(n);
            ref_node(&ref_mth(&leaves[..k]), &ref_mth(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]).
fn ref_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = ref_split(n);
    if m < k {
        let mut p = ref_path(m, &leaves[..k]);
        p.push(ref_mth(&leaves[k..]));
        p
    } else {
        let mut p = ref_path(m - k, &leaves[k..]);
        p.push(ref_mth(&leaves[..k]));
        p
    }
}

/// PROOF(m, D[n]) = SUBPROOF(m, D[n], true); empty for m = 0 or m = n.
fn ref_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    if m == 0 || m == leaves.len() {
        return Vec::new();
    }
    ref_subproof(m, leaves, true)
}

fn ref_subproof(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if whole {
            Vec::new()
        } else {
            vec![ref_mth(leaves)]
        };
    }
    let k = ref_split(n);
    if m <= k {
        let mut p = ref_subproof(m, &leaves[..k], whole);
        p.push(ref_mth(&leaves[k..]));
        p
    } else {
        let mut p = ref_subproof(m - k, &leaves[k..], false);
        p.push(ref_mth(&leaves[..k]));
        p
    }
}

/// The root an inclusion proof leads to, walking the tree shape of `size`
/// from the top (the last proof hash is the root's other child). `None` when
/// the proof has the wrong number of hashes or the index is out of range.
fn ref_inclusion_root(index: u64, size: u64, leaf: &Hash, proof: &[Hash]) -> Option<Hash> {
    fn walk(index: u64, n: u64, leaf: &Hash, proof: &mut &[Hash]) -> Option<Hash> {
        if n == 1 {
            return Some(*leaf);
        }
        let (sibling, rest) = proof.split_last()?;
        *proof = rest;
        let k = ref_split(usize::try_from(n).ok()?) as u64;
        Some(if index < k {
            ref_node(&walk(index, k, leaf, proof)?, sibling)
        } else {
            ref_node(sibling, &walk(index - k, n - k, leaf, proof)?)
        })
    }
    if index >= size {
        return None;
    }
    let mut rest = proof;
    let root = walk(index, size, leaf, &mut rest)?;
    rest.is_empty().then_some(root)
}

/// Whether a consistency proof is accepted, by undoing SUBPROOF from the top:
/// each step yields (hash of the old tree's part, hash of the new tree's part).
fn ref_consistency_ok(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    fn walk(
        m: u64,
        n: u64,
        whole: bool,
        old_root: &Hash,
        proof: &mut &[Hash],
    ) -> Option<(Hash, Hash)> {
        if m == n {
            if whole {
                return Some((*old_root, *old_root));
            }
            let (last, rest) = proof.split_last()?;
            *proof = rest;
            return Some((*last, *last));
        }
        let (sibling, rest) = proof.split_last()?;
        *proof = rest;
        let k = ref_split(usize::try_from(n).ok()?) as u64;
        if m <= k {
            let (o, nw) = walk(m, k, whole, old_root, proof)?;
            Some((o, ref_node(&nw, sibling)))
        } else {
            let (o, nw) = walk(m - k, n - k, false, old_root, proof)?;
            Some((ref_node(sibling, &o), ref_node(sibling, &nw)))
        }
    }
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    if old == 0 {
        return proof.is_empty();
    }
    let mut rest = proof;
    match walk(old, new, true, old_root, &mut rest) {
        Some((o, nw)) => rest.is_empty() && o == *old_root && nw == *new_root,
        None => false,
    }
}

/// The left/right turns from the root down to leaf `index` in the tree
/// shape of `size` leaves. Two (index, size) pairs with the same turns
/// combine a proof in exactly the same way.
fn inclusion_shape(index: u64, size: u64) -> Vec<bool> {
    let (mut index, mut n, mut turns) = (index, size, Vec::new());
    while n > 1 {
        let k = ref_split(n as usize) as u64;
        if index < k {
            turns.push(false);
            n = k;
        } else {
            turns.push(true);
            index -= k;
            n -= k;
        }
    }
    turns
}

/// The steps SUBPROOF takes for (old, new): the analogue of
/// [`inclusion_shape`] for consistency proofs.
fn consistency_shape(old: u64, new: u64) -> Vec<u8> {
    let (mut m, mut n, mut whole, mut steps) = (old, new, true, Vec::new());
    if old == 0 || old >= new {
        return vec![b'-'];
    }
    loop {
        if m == n {
            steps.push(if whole { b'W' } else { b'P' });
            return steps;
        }
        let k = ref_split(n as usize) as u64;
        if m <= k {
            steps.push(b'L');
            n = k;
        } else {
            steps.push(b'R');
            m -= k;
            n -= k;
            whole = false;
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers around the API under test.
// ---------------------------------------------------------------------------

fn incl(tree: &MemoryTree, index: u64, size: u64) -> Vec<Hash> {
    inclusion_proof(index, size, tree)
        .expect("every node of the tree is stored")
        .expect("index is in range")
}

fn cons(tree: &MemoryTree, old: u64, new: u64) -> Vec<Hash> {
    consistency_proof(old, new, tree)
        .expect("every node of the tree is stored")
        .expect("sizes are in order")
}

fn root_at(tree: &MemoryTree, size: u64) -> Hash {
    tree.root_at(size).expect("size is within the tree")
}

/// A tampered verification: (what, index or old size, size or new size,
/// leaf hash or old root, root or new root, proof).
type Probe = (&'static str, u64, u64, Hash, Hash, Vec<Hash>);

/// (old size, new size, old root, new root, proof, accepted).
type EdgeCase<'a> = (u64, u64, Hash, Hash, &'a [Hash], bool);

fn flip(hash: &Hash, bit: usize) -> Hash {
    let mut out = *hash;
    out[(bit / 8) % 32] ^= 1 << (bit % 8);
    out
}

/// Entry bytes of leaf `i` of the tree with `seed`: 1 to 24 bytes, so that
/// there is always a bit to flip.
fn entry(seed: u64, i: u64) -> Vec<u8> {
    let d = sha256(&[&seed.to_le_bytes(), &i.to_le_bytes()]);
    let len = 1 + usize::from(d[0]) % 24;
    d[1..=len].to_vec()
}

fn build(seed: u64, size: u64) -> (MemoryTree, Vec<Vec<u8>>) {
    let mut tree = MemoryTree::new();
    let mut entries = Vec::new();
    for i in 0..size {
        let e = entry(seed, i);
        tree.push_entry(&e);
        entries.push(e);
    }
    (tree, entries)
}

// ---------------------------------------------------------------------------
// Published vectors.
// ---------------------------------------------------------------------------

#[test]
fn empty_tree_root_is_sha256_of_nothing() {
    assert_eq!(empty_root(), h(EMPTY_ROOT));
    assert_eq!(MemoryTree::new().root(), h(EMPTY_ROOT));
    assert_eq!(MemoryTree::new().root_at(0), Some(h(EMPTY_ROOT)));
    assert_eq!(vector_tree().root_at(0), Some(h(EMPTY_ROOT)));
    assert_eq!(ref_mth(&[]), h(EMPTY_ROOT));
}

#[test]
fn hashes_match_the_reference_hashing() {
    for data in vector_leaves() {
        assert_eq!(leaf_hash(&data), ref_leaf(&data));
    }
    let (a, b) = (h(ROOTS[0]), h(SOME_HASH));
    assert_eq!(node_hash(&a, &b), ref_node(&a, &b));
    assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
    // Domain separation: a leaf of 64 bytes is not the node of two halves.
    let mut both = a.to_vec();
    both.extend_from_slice(&b);
    assert_ne!(leaf_hash(&both), node_hash(&a, &b));
}

#[test]
fn published_node_hashes_are_the_stored_nodes() {
    let tree = vector_tree();
    for (level, row) in NODE_HASHES.iter().enumerate() {
        for (index, want) in row.iter().enumerate() {
            let id = NodeId {
                level: level as u8,
                index: index as u64,
            };
            assert_eq!(
                tree.node(id).expect("node is stored"),
                h(want),
                "node {id:?}"
            );
        }
    }
    for (i, data) in vector_leaves().iter().enumerate() {
        assert_eq!(leaf_hash(data), h(NODE_HASHES[0][i]), "leaf {i}");
    }
}

#[test]
fn published_roots_for_sizes_1_to_8() {
    let leaves = vector_leaves();
    let mut tree = MemoryTree::new();
    for (i, data) in leaves.iter().enumerate() {
        tree.push_entry(data);
        let size = i as u64 + 1;
        assert_eq!(tree.size(), size);
        assert_eq!(tree.root(), h(ROOTS[i]), "root of size {size}");
    }
    let leaf_hashes: Vec<Hash> = leaves.iter().map(|d| ref_leaf(d)).collect();
    for size in 1..=8usize {
        assert_eq!(
            root_at(&tree, size as u64),
            h(ROOTS[size - 1]),
            "root_at({size})"
        );
        assert_eq!(
            ref_mth(&leaf_hashes[..size]),
            h(ROOTS[size - 1]),
            "reference MTH of {size}"
        );
    }
}

#[test]
fn published_inclusion_proofs_are_produced_and_verify() {
    let tree = vector_tree();
    let leaves = vector_leaves();
    for (leaf, size, path) in INCLUSION_PROOFS {
        let index = leaf - 1;
        let want = hs(path);
        let got = incl(&tree, index, size);
        assert_eq!(
            got, want,
            "inclusion proof of leaf {index} in tree of {size}"
        );
        let lh = leaf_hash(&leaves[index as usize]);
        let root = h(ROOTS[size as usize - 1]);
        assert_eq!(verify_inclusion(&lh, index, size, &want, &root), Ok(()));
        assert_eq!(ref_inclusion_root(index, size, &lh, &want), Some(root));
    }
}

#[test]
fn published_consistency_proofs_are_produced_and_verify() {
    let tree = vector_tree();
    for (old, new, proof) in CONSISTENCY_PROOFS {
        let want = hs(proof);
        let got = cons(&tree, old, new);
        assert_eq!(got, want, "consistency proof {old} -> {new}");
        let (r1, r2) = (h(ROOTS[old as usize - 1]), h(ROOTS[new as usize - 1]));
        assert_eq!(verify_consistency(old, new, &r1, &r2, &want), Ok(()));
        assert!(ref_consistency_ok(old, new, &r1, &r2, &want));
    }
}

/// The tampered variants of `corruptInclusionProof` in transparency-dev/merkle
/// `proof/verify_test.go`, applied to every published inclusion proof: all
/// must be rejected.
#[test]
fn corrupted_published_inclusion_proofs_are_rejected() {
    let leaves = vector_leaves();
    let some = h(SOME_HASH);
    let empty = h(EMPTY_ROOT);
    for (leaf, size, path) in INCLUSION_PROOFS {
        let index = leaf - 1;
        let proof = hs(path);
        let lh = leaf_hash(&leaves[index as usize]);
        let root = h(ROOTS[size as usize - 1]);
        let with = |extra: &[Hash], front: bool| -> Vec<Hash> {
            if front {
                extra.iter().chain(&proof).copied().collect()
            } else {
                proof.iter().chain(extra).copied().collect()
            }
        };
        let mut probes: Vec<Probe> = vec![
            (
                "index - 1",
                index.wrapping_sub(1),
                size,
                lh,
                root,
                proof.clone(),
            ),
            ("index + 1", index + 1, size, lh, root, proof.clone()),
            ("index ^ 2", index ^ 2, size, lh, root, proof.clone()),
            ("size * 2", index, size * 2, lh, root, proof.clone()),
            ("size / 2", index, size / 2, lh, root, proof.clone()),
            (
                "wrong leaf",
                index,
                size,
                leaf_hash(b"WrongLeaf"),
                root,
                proof.clone(),
            ),
            ("empty root", index, size, lh, empty, proof.clone()),
            ("random root", index, size, lh, some, proof.clone()),
            (
                "trailing zeros",
                index,
                size,
                lh,
                root,
                with(&[[0; 32]], false),
            ),
            ("trailing root", index, size, lh, root, with(&[root], false)),
            (
                "preceding zeros",
                index,
                size,
                lh,
                root,
                with(&[[0; 32]], true),
            ),
            ("preceding root", index, size, lh, root, with(&[root], true)),
        ];
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i][0] ^= 8;
            probes.push(("proof bit 3 flipped", index, size, lh, root, p));
        }
        if !proof.is_empty() {
            let p = proof[..proof.len() - 1].to_vec();
            probes.push(("removed component", index, size, lh, root, p));
        }
        if proof.len() > 1 {
            let mut p = vec![proof[0], some];
            p.extend_from_slice(&proof[1..]);
            probes.push(("inserted component", index, size, lh, root, p));
        }
        for (desc, i, s, l, r, p) in probes {
            assert!(
                verify_inclusion(&l, i, s, &p, &r).is_err(),
                "{desc}: leaf {index}, size {size} accepted"
            );
            assert_eq!(
                ref_inclusion_root(i, s, &l, &p).filter(|x| *x == r),
                None,
                "{desc}"
            );
        }
    }
}

/// The tampered variants of `corruptConsistencyProof` in
/// transparency-dev/merkle `proof/verify_test.go`, applied to every published
/// non-empty consistency proof: all must be rejected.
#[test]
fn corrupted_published_consistency_proofs_are_rejected() {
    let some = h(SOME_HASH);
    for (old, new, proof) in CONSISTENCY_PROOFS {
        let proof = hs(proof);
        if proof.is_empty() {
            continue;
        }
        let (r1, r2) = (h(ROOTS[old as usize - 1]), h(ROOTS[new as usize - 1]));
        let with = |extra: Hash, front: bool| -> Vec<Hash> {
            if front {
                std::iter::once(extra)
                    .chain(proof.iter().copied())
                    .collect()
            } else {
                proof
                    .iter()
                    .copied()
                    .chain(std::iter::once(extra))
                    .collect()
            }
        };
        let mut probes: Vec<Probe> = vec![
            ("old - 1", old - 1, new, r1, r2, proof.clone()),
            ("old + 1", old + 1, new, r1, r2, proof.clone()),
            ("old ^ 2", old ^ 2, new, r1, r2, proof.clone()),
            ("new * 2", old, new * 2, r1, r2, proof.clone()),
            ("new / 2", old, new / 2, r1, r2, proof.clone()),
            ("wrong old root", old, new, some, r2, proof.clone()),
            ("wrong new root", old, new, r1, some, proof.clone()),
            ("swapped roots", old, new, r2, r1, proof.clone()),
            ("empty proof", old, new, r1, r2, Vec::new()),
            ("trailing zeros", old, new, r1, r2, with([0; 32], false)),
            ("trailing old root", old, new, r1, r2, with(r1, false)),
            ("trailing new root", old, new, r1, r2, with(r2, false)),
            ("preceding zeros", old, new, r1, r2, with([0; 32], true)),
            ("preceding old root", old, new, r1, r2, with(r1, true)),
            ("preceding new root", old, new, r1, r2, with(r2, true)),
            ("preceding proof[0]", old, new, r1, r2, with(proof[0], true)),
            (
                "truncated",
                old,
                new,
                r1,
                r2,
                proof[..proof.len() - 1].to_vec(),
            ),
        ];
        for i in 0..proof.len() {
            let mut p = proof.clone();
            p[i][0] ^= 16;
            probes.push(("proof bit 4 flipped", old, new, r1, r2, p));
        }
        for (desc, o, n, a, b, p) in probes {
            assert!(
                verify_consistency(o, n, &a, &b, &p).is_err(),
                "{desc}: {old} -> {new} accepted"
            );
            assert!(!ref_consistency_ok(o, n, &a, &b, &p), "{desc}");
        }
    }
}

/// The edge cases of `TestVerifyConsistency` and `TestVerifyInclusion` in
/// transparency-dev/merkle `proof/verify_test.go`.
#[test]
fn verification_edge_cases_of_the_reference_suite() {
    let (root1, root2) = (ref_leaf(b"don't care 1"), ref_leaf(b"don't care 2"));
    let empty = h(EMPTY_ROOT);
    let one = [empty];
    let cases: [EdgeCase; 13] = [
        (0, 0, root1, root2, &[], false),
        (1, 1, root1, root2, &[], false),
        (0, 0, root1, root1, &[], true),
        (0, 1, root1, root2, &[], true),
        (1, 1, root2, root2, &[], true),
        (1, 0, root1, root2, &[], false),
        (2, 1, root1, root2, &[], false),
        (1, 2, root1, root2, &[], false),
        (0, 0, empty, root2, &[], false),
        (1, 1, empty, root2, &[], false),
        (0, 0, empty, empty, &one, false),
        (0, 1, empty, empty, &one, false),
        (1, 1, empty, empty, &one, false),
    ];
    for (old, new, a, b, proof, ok) in cases {
        assert_eq!(
            verify_consistency(old, new, &a, &b, proof).is_ok(),
            ok,
            "consistency {old} -> {new}, {} hashes",
            proof.len()
        );
        assert_eq!(ref_consistency_ok(old, new, &a, &b, proof), ok);
    }
    assert_eq!(
        verify_consistency(2, 1, &root1, &root2, &[]),
        Err(ProofError::SizesOutOfOrder { old: 2, new: 1 })
    );
    assert_eq!(
        verify_consistency(1, 2, &root1, &root2, &[]),
        Err(ProofError::WrongLength)
    );

    let some = h(SOME_HASH);
    for (index, size) in [(0, 0), (0, 1), (1, 0), (2, 1)] {
        assert!(verify_inclusion(&some, index, size, &[], &empty).is_err());
        assert!(verify_inclusion(&empty, index, size, &[], &some).is_err());
    }
    assert_eq!(
        verify_inclusion(&some, 1, 1, &[], &some),
        Err(ProofError::IndexOutOfRange { index: 1, size: 1 })
    );
    // A one-entry tree: the root is the leaf hash, the proof is empty.
    let lh = leaf_hash(b"data");
    assert_eq!(verify_inclusion(&lh, 0, 1, &[], &lh), Ok(()));
    assert_eq!(
        verify_inclusion(&lh, 0, 1, &[], &some),
        Err(ProofError::RootMismatch)
    );
}

#[test]
fn proofs_outside_the_tree_are_refused() {
    let tree = vector_tree();
    assert_eq!(
        inclusion_proof(8, 8, &tree).expect("no read needed"),
        Err(ProofError::IndexOutOfRange { index: 8, size: 8 })
    );
    assert_eq!(
        inclusion_proof(0, 0, &tree).expect("no read needed"),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        consistency_proof(5, 4, &tree).expect("no read needed"),
        Err(ProofError::SizesOutOfOrder { old: 5, new: 4 })
    );
    assert_eq!(cons(&tree, 0, 8), Vec::<Hash>::new());
    assert_eq!(cons(&tree, 8, 8), Vec::<Hash>::new());
    // Beyond the stored tree, the missing node is reported, not invented.
    assert!(inclusion_proof(0, 9, &tree).is_err());
    assert!(consistency_proof(3, 9, &tree).is_err());
    assert_eq!(tree.root_at(9), None);
}

/// RFC 6962 proofs do not authenticate the sizes themselves (a signed tree
/// head does): a proof combines its hashes the same way for two
/// (index, size) pairs with the same turns from the root, and then verifies
/// for both. Pinned here so the property tests' expectation is explicit.
#[test]
fn sizes_with_the_same_shape_accept_the_same_proof() {
    let tree = vector_tree();
    let lh = leaf_hash(&vector_leaves()[0]);
    let p = incl(&tree, 0, 3);
    assert_eq!(inclusion_shape(0, 3), inclusion_shape(0, 4));
    assert_eq!(verify_inclusion(&lh, 0, 4, &p, &h(ROOTS[2])), Ok(()));
    assert_ne!(inclusion_shape(0, 3), inclusion_shape(0, 5));
    assert!(verify_inclusion(&lh, 0, 5, &p, &h(ROOTS[2])).is_err());

    let c = cons(&tree, 1, 2);
    assert_eq!(consistency_shape(1, 2), consistency_shape(2, 3));
    assert_eq!(
        verify_consistency(2, 3, &h(ROOTS[0]), &h(ROOTS[1]), &c),
        Ok(())
    );
    assert_ne!(consistency_shape(1, 2), consistency_shape(1, 3));
    assert!(verify_consistency(1, 3, &h(ROOTS[0]), &h(ROOTS[1]), &c).is_err());
}

// ---------------------------------------------------------------------------
// Exhaustive small trees.
// ---------------------------------------------------------------------------

#[test]
fn every_proof_of_every_tree_up_to_64_leaves() {
    let mut tree = MemoryTree::new();
    let mut leaves: Vec<Hash> = Vec::new();
    for size in 1..=64u64 {
        let data = entry(7, size - 1);
        tree.push_entry(&data);
        leaves.push(ref_leaf(&data));
        let root = ref_mth(&leaves);
        assert_eq!(tree.root(), root, "root of size {size}");
        let roots: Vec<Hash> = (0..=size).map(|s| root_at(&tree, s)).collect();
        for (s, r) in roots.iter().enumerate() {
            assert_eq!(*r, ref_mth(&leaves[..s]), "root_at({s}) of {size}");
        }
        for index in 0..size {
            let lh = leaves[index as usize];
            let p = incl(&tree, index, size);
            assert_eq!(
                p,
                ref_path(index as usize, &leaves),
                "PATH({index}, {size})"
            );
            assert_eq!(
                verify_inclusion(&lh, index, size, &p, &root),
                Ok(()),
                "{index} in {size}"
            );
            assert_eq!(ref_inclusion_root(index, size, &lh, &p), Some(root));
            // Any other index of the same tree fails with this proof.
            if size <= 32 {
                for other in (0..size).filter(|&o| o != index) {
                    assert!(
                        verify_inclusion(&lh, other, size, &p, &root).is_err(),
                        "proof of {index} accepted for {other} in {size}"
                    );
                }
            }
        }
        for old in 0..=size {
            let old_root = roots[old as usize];
            let p = cons(&tree, old, size);
            assert_eq!(p, ref_proof(old as usize, &leaves), "PROOF({old}, {size})");
            assert_eq!(
                verify_consistency(old, size, &old_root, &root, &p),
                Ok(()),
                "{old} -> {size}"
            );
            assert!(ref_consistency_ok(old, size, &old_root, &root, &p));
            // Any other old size whose root differs fails with this proof.
            for other in (1..size).filter(|&o| o != old) {
                let other_root = roots[other as usize];
                assert!(
                    verify_consistency(other, size, &other_root, &root, &p).is_err(),
                    "proof {old} -> {size} accepted for {other}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Property tests: random trees of up to 2000 leaves.
// ---------------------------------------------------------------------------

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        // Never write regression files into the repository.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn inclusion_proofs_verify_and_tampering_is_caught(
        seed in any::<u64>(),
        size in 1u64..=2000,
        index_pick in any::<u64>(),
        other_pick in any::<u64>(),
        wrong_size in 1u64..=2001,
        bit in any::<usize>(),
        which in any::<usize>(),
        extra in any::<[u8; 32]>(),
    ) {
        let (tree, entries) = build(seed, size);
        let leaves: Vec<Hash> = entries.iter().map(|e| ref_leaf(e)).collect();
        let root = tree.root();
        prop_assert_eq!(root, ref_mth(&leaves));

        let index = index_pick % size;
        let data = &entries[index as usize];
        let lh = leaf_hash(data);
        let proof = incl(&tree, index, size);
        prop_assert_eq!(&proof, &ref_path(index as usize, &leaves));
        prop_assert_eq!(verify_inclusion(&lh, index, size, &proof, &root), Ok(()));

        // One bit of the entry bytes.
        let mut bad = data.clone();
        let b = bit % (bad.len() * 8);
        bad[b / 8] ^= 1 << (b % 8);
        prop_assert!(verify_inclusion(&leaf_hash(&bad), index, size, &proof, &root).is_err());

        // One bit of one proof hash.
        if !proof.is_empty() {
            let mut p = proof.clone();
            let j = which % p.len();
            p[j] = flip(&p[j], bit);
            prop_assert_eq!(
                verify_inclusion(&lh, index, size, &p, &root),
                Err(ProofError::RootMismatch)
            );
        }

        // One bit of the root.
        prop_assert_eq!(
            verify_inclusion(&lh, index, size, &proof, &flip(&root, bit)),
            Err(ProofError::RootMismatch)
        );

        // Another index of the same tree.
        if size > 1 {
            let other = (index + 1 + other_pick % (size - 1)) % size;
            prop_assert_ne!(other, index);
            prop_assert!(verify_inclusion(&lh, other, size, &proof, &root).is_err());
        }
        prop_assert_eq!(
            verify_inclusion(&lh, size, size, &proof, &root),
            Err(ProofError::IndexOutOfRange { index: size, size })
        );

        // Another size: rejected unless it has exactly the same shape.
        if wrong_size != size {
            let got = verify_inclusion(&lh, index, wrong_size, &proof, &root);
            let same_shape = index < wrong_size
                && inclusion_shape(index, wrong_size) == inclusion_shape(index, size);
            prop_assert_eq!(got.is_ok(), same_shape, "size {} instead of {}", wrong_size, size);
            prop_assert_eq!(
                ref_inclusion_root(index, wrong_size, &lh, &proof) == Some(root),
                same_shape
            );
        }

        // Truncated and extended.
        if !proof.is_empty() {
            let short = &proof[..proof.len() - 1];
            prop_assert_eq!(
                verify_inclusion(&lh, index, size, short, &root),
                Err(ProofError::WrongLength)
            );
            prop_assert!(verify_inclusion(&lh, index, size, &proof[1..], &root).is_err());
        }
        let mut long = proof.clone();
        long.push(extra);
        prop_assert_eq!(
            verify_inclusion(&lh, index, size, &long, &root),
            Err(ProofError::WrongLength)
        );
        let mut front = vec![extra];
        front.extend_from_slice(&proof);
        prop_assert!(verify_inclusion(&lh, index, size, &front, &root).is_err());
    }

    #[test]
    fn consistency_proofs_verify_and_tampering_is_caught(
        seed in any::<u64>(),
        new in 1u64..=2000,
        old_pick in any::<u64>(),
        other_pick in any::<u64>(),
        bit in any::<usize>(),
        which in any::<usize>(),
        extra in any::<[u8; 32]>(),
    ) {
        let (tree, entries) = build(seed, new);
        let leaves: Vec<Hash> = entries.iter().map(|e| ref_leaf(e)).collect();
        let old = 1 + old_pick % new;
        let new_root = tree.root();
        let old_root = root_at(&tree, old);
        prop_assert_eq!(new_root, ref_mth(&leaves));
        prop_assert_eq!(old_root, ref_mth(&leaves[..old as usize]));

        let proof = cons(&tree, old, new);
        prop_assert_eq!(&proof, &ref_proof(old as usize, &leaves));
        prop_assert_eq!(verify_consistency(old, new, &old_root, &new_root, &proof), Ok(()));

        // One bit of one proof hash.
        if !proof.is_empty() {
            let mut p = proof.clone();
            let j = which % p.len();
            p[j] = flip(&p[j], bit);
            prop_assert_eq!(
                verify_consistency(old, new, &old_root, &new_root, &p),
                Err(ProofError::RootMismatch)
            );
        }

        // One bit of either root.
        prop_assert!(
            verify_consistency(old, new, &flip(&old_root, bit), &new_root, &proof).is_err()
        );
        prop_assert!(
            verify_consistency(old, new, &old_root, &flip(&new_root, bit), &proof).is_err()
        );

        // One bit of an entry: the old tree built from it has another root.
        let j = (which % old as usize) as u64;
        let mut altered = MemoryTree::new();
        for (i, e) in entries[..old as usize].iter().enumerate() {
            let mut e = e.clone();
            if i as u64 == j {
                let b = bit % (e.len() * 8);
                e[b / 8] ^= 1 << (b % 8);
            }
            altered.push_entry(&e);
        }
        prop_assert!(
            verify_consistency(old, new, &altered.root(), &new_root, &proof).is_err()
        );

        // Another old size, with its own (true) root: rejected unless it has
        // exactly the same shape; with the original root: rejected likewise.
        let other = 1 + other_pick % new;
        if other != old {
            let same_shape = consistency_shape(other, new) == consistency_shape(old, new);
            let other_root = root_at(&tree, other);
            prop_assert!(
                verify_consistency(other, new, &other_root, &new_root, &proof).is_err(),
                "{} -> {} proof accepted for {}", old, new, other
            );
            prop_assert_eq!(
                verify_consistency(other, new, &old_root, &new_root, &proof).is_ok(),
                same_shape
            );
            prop_assert_eq!(
                ref_consistency_ok(other, new, &old_root, &new_root, &proof),
                same_shape
            );
        }
        // Another new size.
        let wrong_new = old + other_pick % (2001 - old);
        if wrong_new != new {
            let same_shape = consistency_shape(old, wrong_new) == consistency_shape(old, new);
            prop_assert_eq!(
                verify_consistency(old, wrong_new, &old_root, &new_root, &proof).is_ok(),
                same_shape,
                "{} -> {} proof for new size {}", old, new, wrong_new
            );
            prop_assert_eq!(
                ref_consistency_ok(old, wrong_new, &old_root, &new_root, &proof),
                same_shape
            );
        }
        prop_assert_eq!(
            verify_consistency(new + 1, new, &old_root, &new_root, &proof),
            Err(ProofError::SizesOutOfOrder { old: new + 1, new })
        );

        // Truncated and extended.
        if !proof.is_empty() {
            let short = &proof[..proof.len() - 1];
            prop_assert_eq!(
                verify_consistency(old, new, &old_root, &new_root, short),
                Err(ProofError::WrongLength)
            );
            prop_assert!(
                verify_consistency(old, new, &old_root, &new_root, &proof[1..]).is_err()
            );
        }
        let mut long = proof.clone();
        long.push(extra);
        prop_assert_eq!(
            verify_consistency(old, new, &old_root, &new_root, &long),
            Err(ProofError::WrongLength)
        );
    }
}
