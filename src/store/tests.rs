//! The store against an in-memory model: random operation sequences must
//! leave both in the same state, also across close and reopen.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    PutInstance(usize, u16),
    RemoveInstance(usize),
    PutSpace(usize, Option<String>),
    RemoveSpace(usize),
    PutCheckpoint(usize, usize),
    Bind(usize, usize, usize),
    Unbind(usize, usize),
    Reopen,
}

const VIEWSPECS: [&str; 4] = ["echo", "notes;data=a", "notes;data=b", "shell;x=1"];
const SLOTS: [&str; 2] = ["data", "other"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..4usize, any::<u16>()).prop_map(|(v, p)| Op::PutInstance(v, p)),
        (0..4usize).prop_map(Op::RemoveInstance),
        (0..5usize, proptest::option::of("[a-z]{0,8}")).prop_map(|(s, n)| Op::PutSpace(s, n)),
        (0..5usize).prop_map(Op::RemoveSpace),
        (0..5usize, 0..5usize).prop_map(|(c, s)| Op::PutCheckpoint(c, s)),
        (0..4usize, 0..2usize, 0..5usize).prop_map(|(v, sl, s)| Op::Bind(v, sl, s)),
        (0..4usize, 0..2usize).prop_map(|(v, sl)| Op::Unbind(v, sl)),
        Just(Op::Reopen),
    ]
}

#[derive(Default, Debug, PartialEq)]
struct Model {
    instances: BTreeMap<String, InstanceRecord>,
    spaces: BTreeMap<SpaceId, SpaceRecord>,
    checkpoints: BTreeMap<CheckpointId, CheckpointRecord>,
    aliases: BTreeMap<(String, String), SpaceId>,
}

fn instance(port: u16) -> InstanceRecord {
    InstanceRecord {
        service: "svc".into(),
        container_id: Some(format!("c{port}")),
        container_name: format!("substrate-svc-{port}"),
        address: None,
        port,
        state: InstanceState::Ready,
        definition_digest: "d".into(),
        created_at: 1,
        last_request_at: 2,
    }
}

fn observe(store: &Store) -> Model {
    let mut m = Model {
        instances: store.list_instances().unwrap().into_iter().collect(),
        spaces: store
            .list_spaces()
            .unwrap()
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect(),
        checkpoints: store
            .list_checkpoints()
            .unwrap()
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect(),
        aliases: BTreeMap::new(),
    };
    for (u, a) in store.list_aliases().unwrap() {
        m.aliases.insert((u.viewspec, u.slot), a.space);
    }
    // The reverse index must mirror the aliases exactly.
    let mut from_index: Vec<_> = store
        .list_space_uses()
        .unwrap()
        .into_iter()
        .map(|(s, u)| (u.viewspec, u.slot, s))
        .collect();
    let mut from_aliases: Vec<_> = m
        .aliases
        .iter()
        .map(|((v, sl), s)| (v.clone(), sl.clone(), s.to_string()))
        .collect();
    from_index.sort();
    from_aliases.sort();
    assert_eq!(from_index, from_aliases, "space_uses diverged from aliases");
    m
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..40)) {
        let dir = tempfile::tempdir().unwrap();
        let opts = StoreOptions::default();
        let mut store = Store::open(dir.path(), &opts).unwrap();
        let space_ids: Vec<SpaceId> = (0..5).map(|_| SpaceId::generate()).collect();
        let ckpt_ids: Vec<CheckpointId> = (0..5).map(|_| CheckpointId::generate()).collect();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::PutInstance(v, port) => {
                    store.put_instance(VIEWSPECS[v], &instance(port)).unwrap();
                    model.instances.insert(VIEWSPECS[v].into(), instance(port));
                }
                Op::RemoveInstance(v) => {
                    let existed = store.remove_instance(VIEWSPECS[v]).unwrap();
                    prop_assert_eq!(existed, model.instances.remove(VIEWSPECS[v]).is_some());
                }
                Op::PutSpace(s, name) => {
                    let rec = SpaceRecord { id: space_ids[s].clone(), created_at: 5, forked_from: None, name,
                                            size_hint: 0, origin: SpaceOrigin::Api, deleted: false };
                    store.put_space(&rec).unwrap();
                    model.spaces.insert(rec.id.clone(), rec);
                }
                Op::RemoveSpace(s) => {
                    let existed = store.remove_space(&space_ids[s]).unwrap();
                    prop_assert_eq!(existed, model.spaces.remove(&space_ids[s]).is_some());
                    model.aliases.retain(|_, sp| sp != &space_ids[s]);
                }
                Op::PutCheckpoint(c, s) => {
                    let rec = CheckpointRecord { id: ckpt_ids[c].clone(), space: space_ids[s].clone(), parent: None,
                                                 message: Some("m".into()), created_at: 3, method: CopyMethod::Copy };
                    store.put_checkpoint(&rec).unwrap();
                    model.checkpoints.insert(rec.id.clone(), rec);
                }
                Op::Bind(v, sl, s) => {
                    let bound = store.bind_alias(VIEWSPECS[v], SLOTS[sl], &space_ids[s]).unwrap();
                    let live = model.spaces.get(&space_ids[s]).is_some_and(|r| !r.deleted);
                    prop_assert_eq!(bound == AliasBinding::Bound, live);
                    if live {
                        model.aliases.insert((VIEWSPECS[v].into(), SLOTS[sl].into()), space_ids[s].clone());
                    }
                }
                Op::Unbind(v, sl) => {
                    let existed = store.unbind_alias(VIEWSPECS[v], SLOTS[sl]).unwrap();
                    prop_assert_eq!(existed, model.aliases.remove(&(VIEWSPECS[v].into(), SLOTS[sl].into())).is_some());
                }
                Op::Reopen => {
                    drop(store);
                    store = Store::open(dir.path(), &opts).unwrap();
                }
            }
            prop_assert_eq!(&observe(&store), &model);
        }
        drop(store);
        let store = Store::open(dir.path(), &opts).unwrap();
        prop_assert_eq!(&observe(&store), &model);
    }
}

#[test]
fn second_open_reports_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let _held = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    match Store::open_existing(dir.path(), &StoreOptions::default()) {
        Err(StoreError::Locked { .. }) => {}
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("opened a database another handle holds"),
    }
}

#[test]
fn corrupt_value_is_reported_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    let id = SpaceId::generate();
    store
        .put_raw_for_test(Tree::Spaces, id.as_str(), &[1, 0xff, 0xfe, 3])
        .unwrap();
    let err = store.space(&id).unwrap_err();
    assert!(err.to_string().contains(id.as_str()), "{err}");
    let entries = store.raw_entries(Tree::Spaces).unwrap();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].value.is_err());
}

/// A deleted space takes no new alias, and the delete's mark leaves none
/// behind, including one bound after the delete listed the space's uses.
#[test]
fn a_deleted_space_takes_no_alias() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StoreOptions::default()).unwrap();
    let mut rec = SpaceRecord {
        id: SpaceId::generate(),
        created_at: 1,
        forked_from: None,
        name: None,
        size_hint: 0,
        origin: SpaceOrigin::Api,
        deleted: false,
    };
    store.put_space(&rec).unwrap();
    assert_eq!(
        store.bind_alias("notes;data=x", "data", &rec.id).unwrap(),
        AliasBinding::Bound
    );
    rec.deleted = true;
    store.mark_space_deleted(&rec).unwrap();
    assert!(store.uses_of(&rec.id).unwrap().is_empty());
    assert_eq!(
        store.bind_alias("notes;data=y", "data", &rec.id).unwrap(),
        AliasBinding::SpaceDeleted
    );
    assert!(store.alias("notes;data=y", "data").unwrap().is_none());
    assert!(store.uses_of(&rec.id).unwrap().is_empty());
    assert_eq!(
        store.bind_alias("notes;data=z", "data", &SpaceId::generate()).unwrap(),
        AliasBinding::NoSuchSpace
    );
}
