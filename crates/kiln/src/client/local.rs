//! The node as the repository opened in this process: kiln-node's operations, called as
//! the local administrator through the command line.

use super::Node;
use anyhow::Result;
use kiln_store::Store;
use kiln_store::journal::Query;
use kiln_wire::{EventView, GcView, StatView, VerifyView};
use std::path::PathBuf;

/// The repository at `home`, opened here.
pub struct Local {
    /// The store.
    pub store: Store,
    /// The repository directory (its configuration, its build directories).
    pub home: PathBuf,
}

impl Local {
    fn caller(&self) -> kiln_node::Caller {
        crate::cmd::cli_caller()
    }
}

impl Node for Local {
    fn addresses(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn gc(&self) -> Result<GcView> {
        let (cfg, _) = crate::config::Config::load(None, &self.home)?;
        let done =
            kiln_node::content::gc(&self.store, &self.caller(), cfg.keep_events()?, &mut |_| {})?;
        Ok(kiln_node::view::gc(&done))
    }

    fn stat(&self) -> Result<StatView> {
        let stat = kiln_node::content::stat(&self.store, &self.caller())?;
        Ok(kiln_node::view::stat(&stat, &self.home))
    }

    fn verify(&self) -> Result<VerifyView> {
        let report = kiln_node::content::verify(&self.store, &self.caller())?;
        Ok(kiln_node::view::verify(&report))
    }

    fn events(&self, q: &Query) -> Result<Vec<EventView>> {
        Ok(kiln_node::journal::events(&self.store, &self.caller(), q)?
            .iter()
            .map(kiln_node::view::event)
            .collect())
    }
}
