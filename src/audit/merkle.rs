//! The log as a Merkle tree in the RFC 6962 / RFC 9162 structure:
//!
//! ```text
//! leaf hash = SHA-256(0x00 ‖ entry_bytes)
//! node hash = SHA-256(0x01 ‖ left ‖ right)
//! MTH({})   = SHA-256("")
//! MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n]))   k = largest power of two < n
//! ```
//!
//! Storage works with *complete* subtrees only: node (level l, index i)
//! covers leaves `[i·2^l, (i+1)·2^l)` and never changes once written. An
//! append writes the leaf and every complete subtree it closes (amortized
//! two nodes, at most log₂ n + 1). The [`Frontier`] holds the roots of the
//! maximal complete subtrees of the current tree (one per set bit of its
//! size); it computes the root without any read and is rebuilt at start-up
//! from popcount(n) stored nodes. Proofs read O(log n) stored nodes through
//! the [`Nodes`] trait.
//!
//! Verification follows RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2
//! (consistency) literally, so that proofs interoperate with other
//! RFC 6962 implementations.

use ring::digest::{Context, SHA256, digest};
use thiserror::Error;

use super::Hash;

/// `SHA-256(0x00 ‖ entry_bytes)`.
pub fn leaf_hash(entry_bytes: &[u8]) -> Hash {
    let mut c = Context::new(&SHA256);
    c.update(&[0x00]);
    c.update(entry_bytes);
    to_hash(c.finish().as_ref())
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut c = Context::new(&SHA256);
    c.update(&[0x01]);
    c.update(left);
    c.update(right);
    to_hash(c.finish().as_ref())
}

/// The root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    to_hash(digest(&SHA256, b"").as_ref())
}

fn to_hash(b: &[u8]) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(b);
    h
}

/// A complete subtree: `level` 0 is a leaf; it covers leaves
/// `[index << level, (index + 1) << level)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    /// Storage key: level, then index big-endian (9 bytes), so a level's
    /// nodes sort by position.
    pub fn key(self) -> [u8; 9] {
        let mut k = [0u8; 9];
        k[0] = self.level;
        k[1..].copy_from_slice(&self.index.to_be_bytes());
        k
    }
}

/// Where proofs read complete-subtree hashes from.
pub trait Nodes {
    type Error;
    fn node(&self, id: NodeId) -> Result<Hash, Self::Error>;
}

/// The maximal complete subtrees of a tree of `size` leaves, left to right.
pub fn peaks(size: u64) -> impl Iterator<Item = NodeId> {
    let mut start = 0u64;
    (0..64u8).rev().filter_map(move |level| {
        if size & (1u64 << level) == 0 {
            return None;
        }
        let id = NodeId {
            level,
            index: start >> level,
        };
        start += 1u64 << level;
        Some(id)
    })
}

/// The right edge of the tree: enough to append and to compute the root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Hashes of [`peaks`]`(size)`, left to right.
    peaks: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Reads the popcount(size) peak nodes of a stored tree.
    pub fn load<N: Nodes>(size: u64, nodes: &N) -> Result<Frontier, N::Error> {
        let peaks = peaks(size)
            .map(|id| nodes.node(id))
            .collect::<Result<_, _>>()?;
        Ok(Frontier { size, peaks })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; returns the nodes that became complete, the leaf
    /// first, to be stored.
    pub fn push(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let index = self.size;
        let mut made = vec![(NodeId { level: 0, index }, leaf)];
        let mut hash = leaf;
        let mut level = 0u8;
        // Each trailing one bit of the old size is a peak the new leaf closes.
        while index & (1u64 << level) != 0 {
            let left = self.peaks.pop().unwrap_or_default();
            hash = node_hash(&left, &hash);
            level += 1;
            made.push((
                NodeId {
                    level,
                    index: index >> level,
                },
                hash,
            ));
        }
        self.peaks.push(hash);
        self.size += 1;
        made
    }

    /// `MTH` of the whole tree.
    pub fn root(&self) -> Hash {
        let mut it = self.peaks.iter().rev();
        match it.next() {
            None => empty_root(),
            Some(last) => it.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n > 1);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[start:end])` for a range that occurs in the RFC's recursion
/// (`start` aligned to the largest power of two below `end - start`).
fn subtree<N: Nodes>(start: u64, end: u64, nodes: &N) -> Result<Hash, N::Error> {
    let len = end - start;
    if len.is_power_of_two() && start % len == 0 {
        return nodes.node(NodeId {
            level: len.trailing_zeros() as u8,
            index: start / len,
        });
    }
    let k = largest_power_of_two_below(len);
    let left = subtree(start, start + k, nodes)?;
    let right = subtree(start + k, end, nodes)?;
    Ok(node_hash(&left, &right))
}

/// Why a proof could not be made or did not verify.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("entry {index} is not in a tree of {size} entries")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("a tree of {new} entries cannot extend one of {old}")]
    SizesOutOfOrder { old: u64, new: u64 },
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
}

/// `PATH(index, D[size])`: sibling hashes from the leaf up.
pub fn inclusion_proof<N: Nodes>(
    index: u64,
    size: u64,
    nodes: &N,
) -> Result<Result<Vec<Hash>, ProofError>, N::Error> {
    if index >= size {
        return Ok(Err(ProofError::IndexOutOfRange { index, size }));
    }
    let mut path = Vec::new();
    // Walk down from the root, collecting siblings; reverse at the end.
    let (mut start, mut end) = (0u64, size);
    while end - start > 1 {
        let k = largest_power_of_two_below(end - start);
        if index < start + k {
            path.push(subtree(start + k, end, nodes)?);
            end = start + k;
        } else {
            path.push(subtree(start, start + k, nodes)?);
            start += k;
        }
    }
    path.reverse();
    Ok(Ok(path))
}

/// `PROOF(old, D[new])` (RFC 9162 §2.1.4.1). Empty when `old` is 0 or
/// equals `new`.
pub fn consistency_proof<N: Nodes>(
    old: u64,
    new: u64,
    nodes: &N,
) -> Result<Result<Vec<Hash>, ProofError>, N::Error> {
    if old > new {
        return Ok(Err(ProofError::SizesOutOfOrder { old, new }));
    }
    if old == 0 || old == new {
        return Ok(Ok(Vec::new()));
    }
    let mut path = Vec::new();
    let (mut m, mut start, mut end, mut whole) = (old, 0u64, new, true);
    loop {
        let n = end - start;
        if m == n {
            if !whole {
                path.push(subtree(start, end, nodes)?);
            }
            break;
        }
        let k = largest_power_of_two_below(n);
        if m <= k {
            path.push(subtree(start + k, end, nodes)?);
            end = start + k;
        } else {
            path.push(subtree(start, start + k, nodes)?);
            m -= k;
            start += k;
            whole = false;
        }
    }
    path.reverse();
    Ok(Ok(path))
}

/// RFC 9162 §2.1.3.2.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2, with the edge cases of the reference implementation
/// (transparency-dev/merkle): equal sizes need an empty proof and equal
/// roots; every tree is consistent with the empty tree (empty proof).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if old_size == 0 {
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (old_size - 1, new_size - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// A whole tree in memory, for tools and tests: every complete node, by
/// level.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
    frontier: Frontier,
}

impl MemoryTree {
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    pub fn push_entry(&mut self, entry_bytes: &[u8]) {
        self.push_leaf(leaf_hash(entry_bytes));
    }

    pub fn push_leaf(&mut self, leaf: Hash) {
        for (id, h) in self.frontier.push(leaf) {
            let level = id.level as usize;
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(h);
        }
    }

    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The root the tree had at an earlier size.
    pub fn root_at(&self, size: u64) -> Option<Hash> {
        match size {
            0 => Some(empty_root()),
            s if s <= self.size() => subtree(0, s, self).ok(),
            _ => None,
        }
    }
}

/// A node a [`MemoryTree`] does not have.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("no such node")]
pub struct MissingNode;

impl Nodes for MemoryTree {
    type Error = MissingNode;
    fn node(&self, id: NodeId) -> Result<Hash, MissingNode> {
        self.levels
            .get(id.level as usize)
            .and_then(|l| usize::try_from(id.index).ok().and_then(|i| l.get(i)))
            .copied()
            .ok_or(MissingNode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `MTH` straight from the RFC's recursive definition.
    fn reference_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = largest_power_of_two_below(n as u64) as usize;
                node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn frontier_root_matches_the_definition_at_every_size() {
        let mut tree = MemoryTree::new();
        let mut leaves = Vec::new();
        assert_eq!(tree.root(), reference_root(&leaves));
        for i in 0..130u32 {
            let leaf = leaf_hash(&i.to_be_bytes());
            leaves.push(leaf);
            tree.push_leaf(leaf);
            assert_eq!(tree.root(), reference_root(&leaves), "size {}", i + 1);
            for s in 0..=leaves.len() {
                assert_eq!(tree.root_at(s as u64), Some(reference_root(&leaves[..s])));
            }
        }
    }

    #[test]
    fn a_loaded_frontier_continues_like_the_original() {
        let mut tree = MemoryTree::new();
        for i in 0..77u32 {
            tree.push_leaf(leaf_hash(&i.to_be_bytes()));
            let mut loaded = Frontier::load(tree.size(), &tree).unwrap();
            assert_eq!(loaded, tree.frontier);
            let mut copy = tree.frontier.clone();
            let next = leaf_hash(b"next");
            assert_eq!(loaded.push(next), copy.push(next));
        }
    }

    #[test]
    fn peaks_follow_the_bits_of_the_size() {
        let ids: Vec<_> = peaks(13).map(|p| (p.level, p.index)).collect();
        assert_eq!(ids, vec![(3, 0), (2, 2), (0, 12)]);
        assert_eq!(peaks(0).count(), 0);
    }
}
