//! The lineage of spaces drawn as SVG (SPEC §12): spaces and checkpoints
//! are nodes, forks and checkpoint chains are edges.
//!
//! Layout: one row per space, in creation order; a space's checkpoints sit
//! on its row. Columns follow creation time across the whole picture (ids
//! are ULIDs, so sorting ids sorts by time), so every edge points right:
//! space → its first checkpoint → the next, and source → fork (from the
//! checkpoint it was forked from, else from the source space).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use crate::store::{CheckpointRecord, ForkedFrom, SpaceRecord};

const COL: u32 = 96;
const ROW: u32 = 56;
const LEFT: u32 = 24;
const TOP: u32 = 28;

/// The spaces connected to `focus` by forks (both ways), or every space.
fn component<'a>(
    spaces: &'a [SpaceRecord],
    checkpoints: &[CheckpointRecord],
    focus: Option<&str>,
) -> Vec<&'a SpaceRecord> {
    let Some(focus) = focus else {
        return spaces.iter().collect();
    };
    let mut keep: BTreeSet<&str> = BTreeSet::from([focus]);
    loop {
        let before = keep.len();
        for s in spaces {
            if let Some(parent) = s.forked_from.as_ref().and_then(|f| source_space(f, checkpoints)) {
                let child = s.id.as_str();
                if keep.contains(child) || keep.contains(parent) {
                    keep.insert(child);
                    keep.insert(parent);
                }
            }
        }
        if keep.len() == before {
            break;
        }
    }
    spaces.iter().filter(|s| keep.contains(s.id.as_str())).collect()
}

/// The space a fork came from: named, or the space of its checkpoint.
fn source_space<'a>(from: &'a ForkedFrom, checkpoints: &'a [CheckpointRecord]) -> Option<&'a str> {
    match (&from.space, &from.checkpoint) {
        (Some(space), _) => Some(space.as_str()),
        (None, Some(ckpt)) => checkpoints.iter().find(|c| &c.id == ckpt).map(|c| c.space.as_str()),
        (None, None) => None,
    }
}

fn escape(s: &str) -> String {
    crate::proxy::pages::escape(s)
}

/// A short label: the name, else the id's last 6 characters.
fn short(id: &str, name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() => n.chars().take(12).collect(),
        _ => format!("…{}", &id[id.len().saturating_sub(6)..]),
    }
}

/// The SVG of the lineage around `focus` (a space id), or of everything.
pub fn render(spaces: &[SpaceRecord], checkpoints: &[CheckpointRecord], focus: Option<&str>) -> String {
    let mut shown = component(spaces, checkpoints, focus);
    shown.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let rows: BTreeMap<&str, u32> = shown
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i as u32))
        .collect();
    let ckpts: Vec<&CheckpointRecord> = checkpoints
        .iter()
        .filter(|c| rows.contains_key(c.space.as_str()))
        .collect();
    // Columns: every shown id in creation (ULID) order.
    let mut ids: Vec<&str> = shown
        .iter()
        .map(|s| s.id.as_str())
        .chain(ckpts.iter().map(|c| c.id.as_str()))
        .collect();
    ids.sort_by_key(|id| id.split_once('-').map(|(_, ulid)| ulid).unwrap_or(id));
    let col: BTreeMap<&str, u32> = ids.iter().enumerate().map(|(i, id)| (*id, i as u32)).collect();
    let pos = |id: &str, row: u32| (LEFT + col.get(id).copied().unwrap_or(0) * COL, TOP + row * ROW);

    let width = LEFT * 2 + (ids.len().max(1) as u32) * COL;
    let height = TOP * 2 + (shown.len().max(1) as u32) * ROW;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="lineage of spaces and checkpoints">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#667"/></marker></defs>
"##
    );
    let mut edges = String::new();
    let mut nodes = String::new();
    let edge = |out: &mut String, kind: &str, from: (u32, u32), to: (u32, u32)| {
        let _ = writeln!(
            out,
            r#"<line class="edge {kind}" x1="{}" y1="{}" x2="{}" y2="{}" marker-end="url(#arrow)"/>"#,
            from.0 + 16,
            from.1,
            to.0 - 16,
            to.1
        );
    };
    for s in &shown {
        let row = rows[s.id.as_str()];
        let (x, y) = pos(s.id.as_str(), row);
        let class = if s.deleted { "node space deleted" } else { "node space" };
        let _ = writeln!(
            nodes,
            r#"<g class="{class}" data-id="{id}"><title>{id}{name}</title><rect x="{rx}" y="{ry}" width="32" height="22" rx="4"/><text x="{x}" y="{ty}">{label}</text></g>"#,
            id = escape(s.id.as_str()),
            name = s
                .name
                .as_deref()
                .map(|n| format!(" ({})", escape(n)))
                .unwrap_or_default(),
            rx = x - 16,
            ry = y - 11,
            ty = y + 24,
            label = escape(&short(s.id.as_str(), s.name.as_deref())),
        );
        if let Some(f) = &s.forked_from {
            let source = source_space(f, checkpoints);
            if let Some(&source_row) = source.and_then(|id| rows.get(id)) {
                let from = match (&f.checkpoint, source) {
                    (Some(c), _) => pos(c.as_str(), source_row),
                    (None, Some(space)) => pos(space, source_row),
                    (None, None) => continue,
                };
                edge(&mut edges, "fork", from, (x, y));
            }
        }
    }
    for c in &ckpts {
        let row = rows[c.space.as_str()];
        let (x, y) = pos(c.id.as_str(), row);
        let prev = match &c.parent {
            Some(p) => pos(p.as_str(), row),
            None => pos(c.space.as_str(), row),
        };
        edge(&mut edges, "chain", prev, (x, y));
        let _ = writeln!(
            nodes,
            r#"<g class="node checkpoint" data-id="{id}"><title>{id}{msg}</title><circle cx="{x}" cy="{y}" r="10"/><text x="{x}" y="{ty}">{label}</text></g>"#,
            id = escape(c.id.as_str()),
            msg = c
                .message
                .as_deref()
                .map(|m| format!(": {}", escape(m)))
                .unwrap_or_default(),
            ty = y + 24,
            label = escape(&short(c.id.as_str(), c.message.as_deref())),
        );
    }
    svg.push_str(&edges);
    svg.push_str(&nodes);
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CheckpointId, SpaceId};
    use crate::store::{CopyMethod, SpaceOrigin};

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
    fn forks_and_checkpoint_chains_are_edges() {
        let a = SpaceId::generate();
        let c1 = CheckpointId::generate();
        let c2 = CheckpointId::generate();
        let b = SpaceId::generate();
        let other = SpaceId::generate();
        let spaces = vec![
            space(&a, None),
            space(
                &b,
                Some(ForkedFrom {
                    space: Some(a.clone()),
                    checkpoint: Some(c1.clone()),
                }),
            ),
            space(&other, None),
        ];
        let ck = |id: &CheckpointId, parent: Option<&CheckpointId>| CheckpointRecord {
            id: id.clone(),
            space: a.clone(),
            parent: parent.cloned(),
            message: Some("<x>".into()),
            created_at: 0,
            method: CopyMethod::Copy,
        };
        let checkpoints = vec![ck(&c1, None), ck(&c2, Some(&c1))];
        let svg = render(&spaces, &checkpoints, Some(b.as_str()));
        for id in [a.as_str(), b.as_str(), c1.as_str(), c2.as_str()] {
            assert!(svg.contains(&format!("data-id=\"{id}\"")), "{id} missing");
        }
        assert!(!svg.contains(other.as_str()), "an unrelated space was drawn");
        assert_eq!(svg.matches("class=\"edge fork\"").count(), 1);
        assert_eq!(svg.matches("class=\"edge chain\"").count(), 2);
        assert!(svg.contains("&lt;x&gt;") && !svg.contains("<x>"), "labels are escaped");
    }
}
