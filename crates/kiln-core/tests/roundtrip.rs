//! Property tests of kiln-core's round trips (issue 9): what is imported reads back
//! byte for byte (whole and in ranges) under every profile and chunk size, directories list
//! what they were made of (flat and sharded), a CAR written reads back the same blocks and
//! roots, and a dag-cbor block's links are exactly the CIDs it holds.

use ipld_core::ipld::Ipld;
use kiln_core::car::{CarReader, CarWriter};
use kiln_core::cids::{self, DAG_CBOR, RAW};
use kiln_core::export;
use kiln_core::import::{DirEntry, ImportOptions, Profile, build_directory, import_bytes};
use kiln_core::{BlockSource, Cid, MemoryBlocks};
use proptest::prelude::*;
use std::collections::BTreeMap;

fn profile() -> impl Strategy<Value = Profile> {
    prop_oneof![
        Just(Profile::KuboV0),
        Just(Profile::KuboV1),
        Just(Profile::V1_2025)
    ]
}

/// Import options: a profile, sometimes with a small chunk size (many leaves, deep trees).
fn options() -> impl Strategy<Value = ImportOptions> {
    (profile(), prop::option::of(1usize..5000)).prop_map(|(p, chunk)| {
        let mut o = ImportOptions::from_profile(p);
        if let Some(c) = chunk {
            o.chunk_size = c;
        }
        o
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn import_then_export_gives_the_bytes_back(
        data in prop::collection::vec(any::<u8>(), 0..200_000),
        opts in options(),
        from in 0usize..210_000,
        len in 0usize..100_000,
    ) {
        let mut blocks = MemoryBlocks::default();
        let root = import_bytes(&mut blocks, &data, &opts).unwrap();
        prop_assert_eq!(root.size, data.len() as u64);
        let mut out = Vec::new();
        export::read_file(&blocks, &root.cid, 0, None, &mut out).unwrap();
        prop_assert_eq!(&out, &data);
        let mut part = Vec::new();
        export::read_file(&blocks, &root.cid, from as u64, Some(len as u64), &mut part).unwrap();
        let a = from.min(data.len());
        let b = (a + len).min(data.len());
        prop_assert_eq!(&part[..], &data[a..b]);
        let mut streamed = Vec::new();
        std::io::Read::read_to_end(
            &mut export::FileReader::new(&blocks, &root.cid).unwrap(),
            &mut streamed,
        ).unwrap();
        prop_assert_eq!(streamed, data);
        // Every block is what its CID says.
        for (cid, bytes) in &blocks.blocks {
            prop_assert!(cids::verify(cid, bytes).is_ok());
        }
    }

    #[test]
    fn directories_list_what_they_were_made_of(
        names in prop::collection::btree_set("[a-zA-Z0-9 ._é-]{1,40}", 0..400),
        profile in profile(),
        small_shards in any::<bool>(),
    ) {
        let names: Vec<String> = names
            .into_iter()
            .filter(|n| kiln_core::names::is_safe(n))
            .collect();
        let mut opts = ImportOptions::from_profile(profile);
        if small_shards {
            // Shard at once: the HAMT path for every directory.
            opts.hamt_threshold = 64;
        }
        let mut blocks = MemoryBlocks::default();
        let mut want = BTreeMap::new();
        let mut entries = Vec::new();
        for (i, n) in names.iter().enumerate() {
            let f = import_bytes(&mut blocks, format!("file {i}").as_bytes(), &opts).unwrap();
            want.insert(n.clone(), f.cid);
            entries.push(DirEntry::new(n.clone(), &f));
        }
        let dir = build_directory(&mut blocks, entries, &opts).unwrap();
        let got: BTreeMap<String, Cid> = export::list(&blocks, &dir.cid)
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.cid))
            .collect();
        prop_assert_eq!(&got, &want);
        for (n, c) in want.iter().take(20) {
            prop_assert_eq!(export::lookup(&blocks, &dir.cid, n).unwrap(), *c);
        }
        prop_assert!(export::lookup(&blocks, &dir.cid, "not-a-name-here/").is_err());
    }

    #[test]
    fn a_car_written_reads_back_the_same(
        datas in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..5000), 0..50),
        roots in 0usize..4,
    ) {
        let blocks: Vec<(Cid, Vec<u8>)> = datas
            .into_iter()
            .map(|d| (cids::cid_of(cid::Version::V1, RAW, &d), d))
            .collect();
        let root_cids: Vec<Cid> = blocks.iter().take(roots).map(|(c, _)| *c).collect();
        let mut w = CarWriter::new(Vec::new(), &root_cids).unwrap();
        for (c, d) in &blocks {
            w.write_block(c, d).unwrap();
        }
        let bytes = w.finish().unwrap();
        let mut r = CarReader::new(&bytes[..]).unwrap();
        prop_assert_eq!(r.roots(), &root_cids[..]);
        let mut read = Vec::new();
        while let Some(b) = r.next_block().unwrap() {
            read.push(b);
        }
        prop_assert_eq!(read, blocks);
        // Cut anywhere: an error or fewer blocks, never a panic or a block that does not
        // match its CID.
        for cut in [1, bytes.len() / 3, bytes.len().saturating_sub(1)] {
            if cut == 0 || cut >= bytes.len() {
                continue;
            }
            if let Ok(mut r) = CarReader::new(&bytes[..cut]) {
                while let Ok(Some((c, d))) = r.next_block() {
                    prop_assert!(cids::verify(&c, &d).is_ok());
                }
            }
        }
    }

    #[test]
    fn dag_cbor_round_trips_and_its_links_are_found(value in ipld()) {
        let bytes = serde_ipld_dagcbor::to_vec(&value).unwrap();
        let back: Ipld = serde_ipld_dagcbor::from_slice(&bytes).unwrap();
        prop_assert_eq!(&back, &value);
        // Canonical: encoding again gives the same bytes.
        prop_assert_eq!(serde_ipld_dagcbor::to_vec(&back).unwrap(), bytes.clone());
        let cid = cids::cid_of(cid::Version::V1, DAG_CBOR, &bytes);
        let mut found = kiln_core::links::links_of(&cid, &bytes).unwrap();
        let mut want = Vec::new();
        collect_links(&value, &mut want);
        found.sort();
        want.sort();
        prop_assert_eq!(found, want);
        // And the block reads back from a block source by its CID.
        let mut blocks = MemoryBlocks::default();
        blocks.blocks.insert(cid, bytes.clone());
        prop_assert_eq!(blocks.get(&cid).unwrap(), Some(bytes));
    }
}

fn collect_links(v: &Ipld, out: &mut Vec<Cid>) {
    match v {
        Ipld::Link(c) => out.push(*c),
        Ipld::List(l) => l.iter().for_each(|x| collect_links(x, out)),
        Ipld::Map(m) => m.values().for_each(|x| collect_links(x, out)),
        _ => {}
    }
}

/// dag-cbor values: no floats (dag-cbor forbids NaN and infinities; the rest round-trip but
/// are not kiln's concern), links to raw blocks.
fn ipld() -> impl Strategy<Value = Ipld> {
    let leaf = prop_oneof![
        Just(Ipld::Null),
        any::<bool>().prop_map(Ipld::Bool),
        any::<i64>().prop_map(|i| Ipld::Integer(i.into())),
        ".{0,20}".prop_map(Ipld::String),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Ipld::Bytes),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(|d| Ipld::Link(cids::cid_of(
            cid::Version::V1,
            RAW,
            &d
        ))),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Ipld::List),
            prop::collection::btree_map(".{0,10}", inner, 0..8).prop_map(Ipld::Map),
        ]
    })
}
