//! Invites through a daemon: made and listed by an administrator, fetched sealed and used
//! by a joiner.

use super::Http;
use anyhow::Result;
use kiln_wire::{
    InviteCreated, InviteList, InviteRequest, InviteView, JoinRequest, JoinedView, SealedInvite,
};

impl Http {
    /// `POST /api/kiln/v1/invites`.
    pub fn invite_create(&self, req: &InviteRequest) -> Result<InviteCreated> {
        self.daemon.post_json_body("/api/kiln/v1/invites", req)
    }

    /// `GET /api/kiln/v1/invites`.
    pub fn invites(&self) -> Result<Vec<InviteView>> {
        Ok(self
            .daemon
            .get_json::<InviteList>("/api/kiln/v1/invites")?
            .invites)
    }

    /// `GET /api/kiln/v1/invites/{id}`: the sealed bundle, hex.
    pub fn invite_sealed(&self, id: &str) -> Result<String> {
        Ok(self
            .daemon
            .get_json::<SealedInvite>(&format!("/api/kiln/v1/invites/{id}"))?
            .sealed)
    }

    /// `POST /api/kiln/v1/invites/{id}/join`.
    pub fn invite_join(&self, id: &str, req: &JoinRequest) -> Result<JoinedView> {
        self.daemon
            .post_json_body(&format!("/api/kiln/v1/invites/{id}/join"), req)
    }

    /// The DID of the node answering.
    pub fn node_did(&self) -> Result<String> {
        Ok(self.daemon.node()?.did)
    }
}
