//! Every committed input of the fuzz targets — the seed corpus and each crash the fuzzer
//! found (`fuzz/regressions/TARGET/`) — runs through its target in the test suite.

#[test]
fn corpus_and_regressions_pass_every_target() {
    let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut ran = 0;
    for (name, target) in kiln_fuzz::TARGETS {
        for kind in ["corpus", "regressions"] {
            let dir = fuzz.join(kind).join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                assert_eq!(
                    kind,
                    "regressions",
                    "{name} has no seed corpus in {}",
                    dir.display()
                );
                continue;
            };
            for e in entries {
                let path = e.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name}: {} fails", path.display());
                ran += 1;
            }
        }
    }
    assert!(ran >= kiln_fuzz::TARGETS.len(), "only {ran} inputs");
}
