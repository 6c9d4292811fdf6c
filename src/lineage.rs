//! The lineage DAG of spaces and checkpoints, computed from store records.
//!
//! Nodes are spaces and checkpoints. A checkpoint's parent is the space it
//! was taken of; a forked space's parent is the checkpoint it was forked from
//! or, when forked from a live tip, that space. Checkpoints of one space are
//! also chained (`parent` = previous checkpoint), which this view shows as
//! their order under the space.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::store::{CheckpointRecord, SpaceRecord};

/// One node of a lineage tree, with its descendants.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    /// `space` or `checkpoint`.
    pub kind: &'static str,
    /// The space's name or the checkpoint's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub children: Vec<Node>,
}

/// Ancestors (root first) and descendants of one object.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Lineage {
    pub id: String,
    pub ancestors: Vec<String>,
    pub tree: Node,
}

/// The graph, indexed both ways.
pub struct Graph {
    parent: BTreeMap<String, String>,
    children: BTreeMap<String, Vec<String>>,
    info: BTreeMap<String, (&'static str, Option<String>)>,
}

impl Graph {
    pub fn new(spaces: &[SpaceRecord], checkpoints: &[CheckpointRecord]) -> Self {
        let mut g = Graph {
            parent: BTreeMap::new(),
            children: BTreeMap::new(),
            info: BTreeMap::new(),
        };
        // Ids are ULIDs: sorted key order is creation order, so children come
        // out oldest first.
        let mut edges = Vec::new();
        for c in checkpoints {
            g.info.insert(c.id.to_string(), ("checkpoint", c.message.clone()));
            edges.push((c.space.to_string(), c.id.to_string()));
        }
        for s in spaces {
            g.info.insert(s.id.to_string(), ("space", s.name.clone()));
            if let Some(f) = &s.forked_from {
                let from = f
                    .checkpoint
                    .as_ref()
                    .map(|c| c.to_string())
                    .or_else(|| f.space.as_ref().map(|s| s.to_string()));
                if let Some(from) = from {
                    edges.push((from, s.id.to_string()));
                }
            }
        }
        edges.sort();
        for (from, to) in edges {
            g.parent.insert(to.clone(), from.clone());
            g.children.entry(from).or_default().push(to);
        }
        g
    }

    pub fn contains(&self, id: &str) -> bool {
        self.info.contains_key(id)
    }

    /// Lineage of `id`, or `None` when no such object is recorded.
    pub fn lineage(&self, id: &str) -> Option<Lineage> {
        if !self.contains(id) {
            return None;
        }
        let mut ancestors = Vec::new();
        let mut at = id;
        // Bounded walk: a corrupt store must not loop forever.
        while let Some(p) = self.parent.get(at) {
            if ancestors.len() > self.info.len() || p == id {
                break;
            }
            ancestors.push(p.clone());
            at = p;
        }
        ancestors.reverse();
        Some(Lineage {
            id: id.to_owned(),
            ancestors,
            tree: self.subtree(id, 0),
        })
    }

    fn subtree(&self, id: &str, depth: usize) -> Node {
        let (kind, label) = self.info.get(id).cloned().unwrap_or(("missing", None));
        let children = if depth > self.info.len() {
            Vec::new()
        } else {
            self.children
                .get(id)
                .map(|cs| cs.iter().map(|c| self.subtree(c, depth + 1)).collect())
                .unwrap_or_default()
        };
        Node {
            id: id.to_owned(),
            kind,
            label,
            children,
        }
    }
}

impl Lineage {
    /// The lineage as an indented tree, ancestors on one line above it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.ancestors.is_empty() {
            out.push_str("ancestors: (none)\n");
        } else {
            out.push_str(&format!("ancestors: {}\n", self.ancestors.join(" > ")));
        }
        render_node(&self.tree, "", true, true, &mut out);
        out
    }
}

fn render_node(node: &Node, prefix: &str, last: bool, root: bool, out: &mut String) {
    let label = node.label.as_deref().map(|l| format!("  {l:?}")).unwrap_or_default();
    if root {
        out.push_str(&format!("{} ({}){label}\n", node.id, node.kind));
    } else {
        let branch = if last { "└── " } else { "├── " };
        out.push_str(&format!("{prefix}{branch}{} ({}){label}\n", node.id, node.kind));
    }
    let child_prefix = if root {
        String::new()
    } else {
        format!("{prefix}{}", if last { "    " } else { "│   " })
    };
    for (i, c) in node.children.iter().enumerate() {
        render_node(c, &child_prefix, i + 1 == node.children.len(), false, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CheckpointId, SpaceId};
    use crate::store::{CopyMethod, ForkedFrom, SpaceOrigin};

    fn space(id: &SpaceId, from: Option<ForkedFrom>) -> SpaceRecord {
        SpaceRecord {
            id: id.clone(),
            created_at: 0,
            forked_from: from,
            name: None,
            size_hint: 0,
            origin: SpaceOrigin::Api,
            deleted: false,
        }
    }

    #[test]
    fn fork_of_a_checkpoint_has_the_space_and_checkpoint_as_ancestors() {
        let (a, b, c) = (SpaceId::generate(), SpaceId::generate(), SpaceId::generate());
        let k = CheckpointId::generate();
        let spaces = vec![
            space(&a, None),
            space(
                &b,
                Some(ForkedFrom {
                    space: Some(a.clone()),
                    checkpoint: Some(k.clone()),
                }),
            ),
            space(
                &c,
                Some(ForkedFrom {
                    space: Some(a.clone()),
                    checkpoint: None,
                }),
            ),
        ];
        let ckpts = vec![CheckpointRecord {
            id: k.clone(),
            space: a.clone(),
            parent: None,
            message: Some("v1".into()),
            created_at: 0,
            method: CopyMethod::Copy,
        }];
        let g = Graph::new(&spaces, &ckpts);
        let l = g.lineage(b.as_str()).unwrap();
        assert_eq!(l.ancestors, vec![a.to_string(), k.to_string()]);
        let root = g.lineage(a.as_str()).unwrap();
        let ids: Vec<_> = root.tree.children.iter().map(|n| n.id.clone()).collect();
        assert!(ids.contains(&k.to_string()) && ids.contains(&c.to_string()));
        let text = root.render();
        assert!(text.contains(b.as_str()) && text.contains("\"v1\""), "{text}");
        assert!(g.lineage("sp-nothing").is_none());
    }
}
