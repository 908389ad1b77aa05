//! A router snapshot and the published state, each made from the other: `capture` takes
//! the parts of a [`State`] a snapshot stores (one source definition per template, the
//! groups, the ordered indexes' own arrays); `restored_state` makes a `State` of them again,
//! compiling one definition per template and checking that the parts fit together (a
//! group's template, each ordered entry's group) — a snapshot that does not is not used.
//! The bookkeeping of each restored group is `State::restore`'s, the one of a published
//! shape.

use super::catalog::Stamp;
use super::groups::{Form, Group, Template};
use super::ordered::{OrderedKey, OrderedSlots};
use super::patterns::InfixIndex;
use super::ranges::Ranges;
use super::reopen::OpenReport;
use super::snapshot::{self, GroupPart, RangePart, Snapshot};
use super::state::State;
use super::Router;
use crate::FileKind;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

impl Router {
    /// The state a snapshot holds, checked against its templates compiled again (one
    /// definition each); `Err` says why it cannot be restored.
    pub(super) fn restored_state(
        &self,
        snap: &Snapshot,
        report: &mut OpenReport,
    ) -> std::result::Result<State, String> {
        let clock = Instant::now();
        let columns = self.columns();
        let mut templates = Vec::with_capacity(snap.templates.len());
        for &(definition, fingerprint) in &snap.templates {
            let form = self
                .compile_definition(definition, &columns)
                .map_err(|e| e.to_string())?;
            if form_fingerprint(&form) != fingerprint {
                return Err(format!("{definition:?} compiles otherwise now"));
            }
            let template = form.template;
            template.source.note(definition);
            templates.push(template);
        }
        report.template_compiles = clock.elapsed();
        let clock = Instant::now();
        let mut state = State::new(columns);
        let shapes: usize = snap.groups.iter().map(|g| g.ids.len()).sum();
        let keys = snap.groups.iter().filter(|g| !g.keys.is_empty()).count();
        state.reserve(shapes, keys);
        let ordered = ordered_indexes(snap, &templates)?;
        let groups = snap.groups.iter().map(|part| {
            let template = templates
                .get(part.template as usize)
                .ok_or("no such template")?;
            let t = &**template;
            let kind = part
                .ordered
                .as_ref()
                .map(|k| matches!(k, OrderedKey::Infix(_)));
            if kind != t.ordered.map(|at| at.infix) || t.indexed.is_empty() && !part.keys.is_empty()
            {
                return Err(format!("group {} does not fit its template", part.handle));
            }
            let packed = Box::from(part.keys);
            let group = Group::restored(
                template.clone(),
                packed,
                part.ordered.clone(),
                part.ids.clone(),
            );
            Ok((
                part.handle,
                group.ok_or(format!("group {} is malformed", part.handle))?,
            ))
        });
        let groups: std::result::Result<Vec<_>, String> = groups.collect();
        if !snap.refused.windows(2).all(|w| w[0] < w[1]) {
            return Err("refused groups out of order".into());
        }
        state.restore(groups?, ordered, &snap.refused)?;
        report.state_rebuild = clock.elapsed();
        Ok(state)
    }
}

/// The fingerprint of a compiled form: a crc32c of its template's parts as the derived
/// `Debug` spells them (every field, floats exactly), its keys and ordered key. A snapshot
/// records it per template, so that a build which compiles a definition otherwise (another
/// plan, other key bytes) does not restore stale keys beside new templates.
pub(super) fn form_fingerprint(form: &Form) -> u32 {
    let t = &form.template;
    let text = format!(
        "{:?}{:?}{:?}{:?}{:?}{:?}|{:?}|{:?}",
        t.residual, t.mask, t.indexed, t.scan, t.view_plans, t.ordered, form.keys, form.ordered
    );
    crc32c::crc32c(text.as_bytes())
}

/// The snapshot of `st` as of the catalog's `stamp` (its table record `table`), a
/// template's `fingerprint` being that of its source definition's form (`None`: it does
/// not compile); `None` when the state holds what a snapshot cannot: views, or a template
/// whose source definition is unknown or does not compile.
pub(super) fn capture<'a>(
    st: &'a mut State,
    stamp: Stamp,
    table: &'a str,
    fingerprint: impl Fn(&str) -> Option<u32>,
) -> Option<Snapshot<'a>> {
    let refused: Vec<u32> = st.refused().collect();
    let State {
        groups, ordered, ..
    } = st;
    let mut positions: HashMap<*const Template, u32> = HashMap::new();
    let mut templates = Vec::new();
    let mut parts = Vec::with_capacity(groups.len());
    for (g, group) in groups.iter() {
        let t = &group.template;
        if !group.views.is_empty() || !t.view_plans.is_empty() {
            return None;
        }
        let at = match positions.entry(Arc::as_ptr(t)) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                let definition = t.source.get()?;
                templates.push((definition, fingerprint(definition)?));
                *e.insert(templates.len() as u32 - 1)
            }
        };
        parts.push(GroupPart {
            handle: g,
            template: at,
            keys: group.packed_keys(),
            ordered: group.ordered.clone(),
            ids: group.ids.clone(),
        });
    }
    let (ranges, infixes) = ordered.parts();
    let ranges = (ranges.into_iter())
        .map(|(slot, (lo, hi, group))| RangePart {
            slot: slot as u32,
            lo: lo.into(),
            hi: hi.into(),
            group: group.into(),
        })
        .collect();
    let literals = (infixes.into_iter())
        .map(|(slot, index)| (slot as u32, index.literals().collect()))
        .collect();
    Some(Snapshot {
        stamp,
        table,
        templates,
        groups: parts,
        refused,
        ranges,
        literals,
    })
}

/// The ordered indexes a snapshot holds, each entry checked against its group: it exists,
/// its template files it in that slot's index under that key, it is filed once and not
/// refused; and every ordered group not refused is filed.
fn ordered_indexes(
    snap: &Snapshot,
    templates: &[Arc<Template>],
) -> std::result::Result<OrderedSlots, String> {
    let mut filed = vec![false; snap.groups.len()];
    let mut file = |g: u32, slot: u32, key: OrderedKey| {
        let at = (snap.groups.binary_search_by_key(&g, |p| p.handle)).ok();
        let fits = at.is_some_and(|at| {
            let part = &snap.groups[at];
            let t = templates.get(part.template as usize);
            let infix = matches!(key, OrderedKey::Infix(_));
            !filed[at]
                && part.ordered.as_ref() == Some(&key)
                && snap.refused.binary_search(&g).is_err()
                && t.is_some_and(|t| {
                    t.indexed.is_empty()
                        && t.ordered
                            .is_some_and(|o| (o.slot, o.infix) == (slot as usize, infix))
                })
        });
        match at {
            Some(at) if fits => {
                filed[at] = true;
                Ok(())
            }
            _ => Err(format!("an ordered entry of group {g} fits no group")),
        }
    };
    let mut ranges = Vec::with_capacity(snap.ranges.len());
    for r in &snap.ranges {
        let index = Ranges::from_parts(
            r.lo.to_vec(),
            r.hi.to_vec(),
            r.group.to_vec(),
            FileKind::RouterSnapshot,
            snapshot::FILE,
        )
        .map_err(|e| e.to_string())?;
        for ((&lo, &hi), &g) in r.lo.iter().zip(r.hi.iter()).zip(r.group.iter()) {
            file(g, r.slot, OrderedKey::Range(lo, hi))?;
        }
        ranges.push((r.slot as usize, index));
    }
    let mut infixes = Vec::with_capacity(snap.literals.len());
    for (slot, entries) in &snap.literals {
        for &(literal, g, refs) in entries {
            if refs != 1 {
                return Err(format!(
                    "literal {literal:?} of group {g} held {refs} times"
                ));
            }
            file(g, *slot, OrderedKey::Infix(literal.into()))?;
        }
        let index = InfixIndex::from_entries(entries.iter().copied()).map_err(|e| e.to_string())?;
        infixes.push((*slot as usize, index));
    }
    let slots = |s: &mut Vec<usize>| {
        s.sort_unstable();
        s.windows(2).all(|w| w[0] != w[1])
    };
    let unique = slots(&mut ranges.iter().map(|(s, _)| *s).collect())
        && slots(&mut infixes.iter().map(|(s, _)| *s).collect());
    let unfiled = (snap.groups.iter().zip(&filed)).any(|(part, &filed)| {
        let t = templates.get(part.template as usize);
        let ordered = t.is_some_and(|t| t.indexed.is_empty() && t.ordered.is_some());
        ordered && !filed && snap.refused.binary_search(&part.handle).is_err()
    });
    if !unique || unfiled {
        return Err("the ordered indexes do not hold their groups".into());
    }
    Ok(OrderedSlots::restored(ranges, infixes))
}

#[cfg(test)]
mod tests {
    use super::super::snapshot::{decode, encode, FILE};
    use super::*;
    use crate::predicate::{CaseFolding, ColumnType};
    use crate::{Config, SyncMode};

    /// A snapshot whose template compiles otherwise in this build (its fingerprint differs:
    /// another plan or other key bytes) is not restored: the catalog is replayed instead.
    #[test]
    fn a_template_compiled_otherwise_is_not_restored() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let columns = vec![("a".to_string(), ColumnType::Int8)];
            let (folding, config) = (CaseFolding::Unicode, Config::default());
            Router::open(dir.path(), columns, folding, config, SyncMode::None).unwrap()
        };
        let r = open();
        for i in 0..10 {
            r.add_shape_with(i, "a = $1", &[Some(i.to_string())])
                .unwrap();
        }
        r.close().unwrap();
        let r = open();
        assert!(r.open_report().unwrap().from_snapshot);
        drop(r);
        let path = dir.path().join(FILE);
        let bytes = std::fs::read(&path).unwrap();
        let mut snap = decode(&bytes).unwrap();
        snap.templates[0].1 ^= 1;
        std::fs::write(&path, encode(&snap)).unwrap();
        let r = open();
        let report = r.open_report().unwrap();
        assert!(!report.from_snapshot);
        let why = report.snapshot_ignored.unwrap_or_default();
        assert!(why.contains("compiles otherwise"), "{why}");
        assert_eq!(r.shape_count(), 10);
    }
}
