//! The store as kiln-core's block source and a session as its block sink, so the importer,
//! the exporter and CAR code work on the store directly.

use crate::{Session, Store};
use kiln_core::{BlockSink, BlockSource, Cid};

fn storage(e: crate::Error) -> kiln_core::Error {
    kiln_core::Error::Storage(Box::new(e))
}

impl BlockSource for Store {
    fn get(&self, cid: &Cid) -> kiln_core::Result<Option<Vec<u8>>> {
        Store::get(self, cid).map_err(storage)
    }
}

impl BlockSink for Session {
    fn put(&mut self, cid: &Cid, data: &[u8], links: &[Cid]) -> kiln_core::Result<()> {
        Session::put(self, cid, data, links).map_err(storage)
    }
}
