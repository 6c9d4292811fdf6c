//! Closedness: which fields a struct admits when definitions take part.
//!
//! Terms. Every conjunct that comes from a definition carries a *close
//! node*. Nodes form a tree that mirrors how the conjunct got there: the
//! node of a definition field (`#D: …`) is a [`Kind::Def`] root; each time
//! a reference is expanded, the referenced vertex's conjuncts all get one
//! fresh node whose parent is the node of the referring conjunct: a
//! [`Kind::Def`] when the reference names a definition (`#A`, `#A.b`),
//! otherwise [`Kind::Plain`] (as in the reference implementation, which
//! resets the closedness of referenced conjuncts). So two references to
//! the same definition are checked separately (`#D.a & #D.b` admits only
//! what both admit). An embedding (`{#A, b: 1}`) puts an [`Kind::Embed`]
//! node between the struct that embeds and what is embedded.
//!
//! A vertex records, per node, the labels, patterns and `...` of the
//! struct literals expanded into it under that node (a [`Group`]). The
//! rule (the CUE specification's): the fields a definition admits are
//! those all its conjuncts declare together. So a label is allowed when
//! every definition node above any group is *marked*, where a group that
//! declares the label (or matches it with a pattern, or is open) marks its
//! node and all that node's ancestors. A definition below an embedding is
//! also satisfied when the struct that embeds it is marked: the embedding
//! struct may add fields.

use rustc_hash::FxHashSet;

use crate::defs::budget;

/// Index of a node in the [`CloseTree`].
pub type NodeId = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Closes: a label must be declared somewhere below it.
    Def,
    /// The edge from an embedding struct to what it embeds.
    Embed,
    /// Only groups: what is below it counts for its ancestors.
    Plain,
}

struct Node {
    parent: Option<NodeId>,
    kind: Kind,
}

/// The nodes of one evaluation.
#[derive(Default)]
pub struct CloseTree {
    nodes: Vec<Node>,
}

/// What the struct literals expanded into one vertex under one node
/// declare.
pub struct Group {
    pub node: NodeId,
    pub labels: FxHashSet<String>,
    /// Indexes into the vertex's pattern constraints.
    pub patterns: Vec<usize>,
    /// Declared `...`.
    pub open: bool,
}

impl CloseTree {
    pub fn add(&mut self, parent: Option<NodeId>, kind: Kind) -> NodeId {
        budget::charge(0, std::mem::size_of::<Node>() as u64);
        self.nodes.push(Node { parent, kind });
        (self.nodes.len() - 1) as NodeId
    }

    fn parent(&self, n: NodeId) -> Option<NodeId> {
        self.nodes.get(n as usize).and_then(|x| x.parent)
    }

    fn kind(&self, n: NodeId) -> Kind {
        self.nodes.get(n as usize).map(|x| x.kind).unwrap_or(Kind::Plain)
    }

    /// Whether `label` is admitted by the groups of one vertex; `accepts`
    /// says whether group `i` declares or matches the label itself.
    pub fn allows(&self, groups: &[Group], mut accepts: impl FnMut(usize) -> bool) -> bool {
        if groups.is_empty() {
            return true;
        }
        let mut marked: FxHashSet<NodeId> = FxHashSet::default();
        for (i, g) in groups.iter().enumerate() {
            if g.open || accepts(i) {
                let mut cur = Some(g.node);
                while let Some(c) = cur {
                    if !marked.insert(c) {
                        break;
                    }
                    cur = self.parent(c);
                }
            }
        }
        groups.iter().all(|g| self.chain_satisfied(g.node, &marked))
    }

    /// Every definition on the chain above `n` is marked, or excused by a
    /// marked embedding struct above it.
    fn chain_satisfied(&self, n: NodeId, marked: &FxHashSet<NodeId>) -> bool {
        let mut pending_def = false;
        let mut cur = Some(n);
        while let Some(c) = cur {
            match self.kind(c) {
                Kind::Def if !marked.contains(&c) => pending_def = true,
                // the struct that embeds admits what it declares
                Kind::Embed if pending_def && self.parent(c).is_some_and(|p| marked.contains(&p)) => {
                    pending_def = false
                }
                _ => {}
            }
            cur = self.parent(c);
        }
        !pending_def
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(node: NodeId, labels: &[&str]) -> Group {
        Group {
            node,
            labels: labels.iter().map(|s| s.to_string()).collect(),
            patterns: Vec::new(),
            open: false,
        }
    }

    fn allows(t: &CloseTree, groups: &[Group], label: &str) -> bool {
        t.allows(groups, |i| groups[i].labels.contains(label))
    }

    #[test]
    fn a_definition_admits_what_its_conjuncts_declare_together() {
        // #Derived: #Base & {kind: "d"}
        let mut t = CloseTree::default();
        let derived = t.add(None, Kind::Def);
        let base = t.add(Some(derived), Kind::Def);
        let groups = [group(derived, &["kind"]), group(base, &["kind", "size"])];
        assert!(allows(&t, &groups, "size"));
        assert!(allows(&t, &groups, "kind"));
        assert!(!allows(&t, &groups, "extra"));
    }

    #[test]
    fn two_definitions_admit_only_common_fields() {
        // #A & #B
        let mut t = CloseTree::default();
        let top = t.add(None, Kind::Plain);
        let a = t.add(Some(top), Kind::Def);
        let b = t.add(Some(top), Kind::Def);
        let groups = [group(a, &["a"]), group(b, &["b"])];
        assert!(!allows(&t, &groups, "a"));
        assert!(!allows(&t, &groups, "b"));
    }

    #[test]
    fn an_embedding_struct_may_add_fields() {
        // {#A, b: 1}
        let mut t = CloseTree::default();
        let s = t.add(None, Kind::Plain);
        let e = t.add(Some(s), Kind::Embed);
        let a = t.add(Some(e), Kind::Def);
        let groups = [group(s, &["b"]), group(a, &["a"])];
        assert!(allows(&t, &groups, "a"));
        assert!(allows(&t, &groups, "b"));
        assert!(!allows(&t, &groups, "c"));
    }
}
