//! kiln's node layer: the one place where a request is *authorized, carried out and
//! recorded*, whatever door it came through (the Kubo RPC, kiln's API, the gateway, the web
//! UI or the command line's direct path).
//!
//! Each use case is a function that takes the [`Caller`] — who asks (today the local
//! administrator or kiln itself, e.g. a schedule; an authenticated identity once kiln has
//! users) and through what — and returns a domain [`Error`] whose [`ErrorKind`] each
//! protocol renders in its own shape. This crate knows no HTTP, no JSON and no command line.
//!
//! ```
//! use kiln_node::{Caller, Via, pins};
//! use kiln_store::{PinMode, Store, StoreOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path(), StoreOptions::default())?;
//! let me = Caller::local(Via::Cli);
//! // Nothing to pin yet: a domain error, "not found".
//! let absent = "bafkreie7kvqbuaxrf4h6s2oqbklhrmjet6oddgc7bfsnfzajp4rp4g7uvq";
//! let e = pins::add(&store, &me, absent, PinMode::Recursive, None, None).unwrap_err();
//! assert_eq!(e.kind(), kiln_node::ErrorKind::NotFound);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![allow(clippy::result_large_err)]

pub mod auth;
pub mod builds;
mod caller;
pub mod content;
mod error;
pub mod invites;
pub mod journal;
pub mod pinning;
pub mod pins;
pub mod quotas;
pub mod rate;
pub mod sessions;
pub mod supervisor;
pub mod text;
pub mod tokens;
pub mod users;
pub mod view;

pub use caller::{Caller, Via, Who};
pub use error::{Error, ErrorKind, Result};
