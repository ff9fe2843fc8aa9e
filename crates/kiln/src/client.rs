//! The one interface through which the command line reaches a node: the repository opened
//! in this process ([`Local`], which calls kiln-node's operations as the local
//! administrator) or the daemon running on it ([`Http`], kiln's API and the Kubo RPC).
//! Which one is settled once, on first use ([`crate::cmd::Repo::node`]); commands format
//! the answers, which have the same shapes either way (kiln-wire's views).
//!
//! Commands move onto it one by one; those not yet moved still branch on
//! [`crate::cmd::Target`].

mod http;
mod local;

pub use http::Http;
pub use local::Local;

use anyhow::Result;
use kiln_store::journal::Query;
use kiln_wire::{EventView, GcView, StatView, VerifyView};

/// What a command asks of a node.
pub trait Node {
    /// The addresses the node listens on (none for a repository opened here).
    fn addresses(&self) -> Result<Vec<String>>;
    /// Collect garbage: blocks no pin reaches, build directories nothing holds.
    fn gc(&self) -> Result<GcView>;
    /// The repository's counts and sizes.
    fn stat(&self) -> Result<StatView>;
    /// Read every block back and check it; every pin's DAG for missing blocks.
    fn verify(&self) -> Result<VerifyView>;
    /// Events of the journal matching `q`, in the order it asks.
    fn events(&self, q: &Query) -> Result<Vec<EventView>>;
}
