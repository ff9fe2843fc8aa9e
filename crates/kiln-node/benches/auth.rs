//! The cost of checking a token, as every request with `Authorization: Bearer` pays it:
//! [`Auth::authenticate`] (the biscuit's signatures and expiry, the revocation deny-list,
//! the user's roles from the store, the identity's rate limit) and then
//! [`authorize`] (the node's roles and the token's checks for the operation), for a token
//! as issued and one attenuated twice. Medians and the 99th percentile of many runs.
//!
//! `cargo bench -p kiln-node --bench auth [-- RUNS]`

use kiln_node::auth::{Auth, DEFAULT_NAMESPACE, Op, authorize};
use kiln_node::users::{self, Role};
use kiln_node::{Caller, Via};
use kiln_store::{Store, StoreOptions};
use std::time::{Duration, Instant};

fn quantile(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q) as usize]
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5000);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), StoreOptions::default()).expect("store");
    let node = kiln_id::NodeKey::generate().expect("key");
    let admin = Caller::local(Via::Cli);
    // A node with a few hundred users and revoked tokens, as a team's would have.
    for i in 0..300 {
        let k = kiln_id::NodeKey::generate().expect("key");
        users::add(
            &store,
            &admin,
            &k.did(),
            None,
            Some((Role::Reader, "default")),
        )
        .expect("user");
        let entry = kiln_node::journal::entry(&admin, "token revoke", format!("t{i}"));
        store
            .token_revoke(&format!("{i:064x}"), "local", &entry)
            .expect("revoke");
    }
    let alice = kiln_id::NodeKey::generate().expect("key");
    users::add(
        &store,
        &admin,
        &alice.did(),
        None,
        Some((Role::Writer, "*")),
    )
    .expect("user");
    let issued = node
        .mint_token(
            &alice.did(),
            &[("*".into(), "writer".into())],
            kiln_id::token::now() + 3600,
        )
        .expect("mint")
        .token;
    // With the identity's rate limit on (at a rate no run reaches), so its cost is counted.
    let auth = Auth::new(node).with_rate(kiln_node::rate::Rate::new(1e9, 1e9));
    let once = kiln_id::token::attenuate(
        &issued,
        &kiln_id::token::Narrowing {
            only: vec!["pin".into(), "read".into()],
            ..Default::default()
        },
    )
    .expect("attenuate");
    let twice = kiln_id::token::attenuate(
        &once,
        &kiln_id::token::Narrowing {
            only: vec!["pin".into()],
            expires: Some(kiln_id::token::now() + 600),
            ..Default::default()
        },
    )
    .expect("attenuate");
    for (label, token) in [("as issued", &issued), ("attenuated twice", &twice)] {
        let mut times = Vec::with_capacity(runs);
        for i in 0..runs + 100 {
            let t = Instant::now();
            let who = auth.authenticate(&store, token).expect("authenticate");
            let caller = Caller { who, via: Via::Rpc };
            authorize(&caller, Op::Pin, DEFAULT_NAMESPACE).expect("authorize");
            let d = t.elapsed();
            if i >= 100 {
                times.push(d);
            }
        }
        let median = quantile(&mut times, 0.5);
        let p99 = quantile(&mut times, 0.99);
        println!(
            "token check, {label}: median {:.4} ms, p99 {:.4} ms ({runs} runs)",
            median.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
    }
}
