//! Adapters between kiln-core's block traits and the store.

use kiln_core::{BlockSink, BlockSource, Cid};
use kiln_store::{Session, Store};

fn storage(e: kiln_store::Error) -> kiln_core::Error {
    kiln_core::Error::Storage(Box::new(e))
}

/// Blocks made by the importer go into a store session.
pub struct SessionSink<'a>(pub &'a mut Session);

impl BlockSink for SessionSink<'_> {
    fn put(&mut self, cid: &Cid, data: &[u8], links: &[Cid]) -> kiln_core::Result<()> {
        self.0.put(cid, data, links).map_err(storage)
    }
}

/// The exporter reads from the store.
pub struct StoreSource<'a>(pub &'a Store);

impl BlockSource for StoreSource<'_> {
    fn get(&self, cid: &Cid) -> kiln_core::Result<Option<Vec<u8>>> {
        self.0.get(cid).map_err(storage)
    }
}
