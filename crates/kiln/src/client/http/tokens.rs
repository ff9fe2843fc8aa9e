//! Tokens through a daemon: issued (by an administrator's token), listed, revoked, and a
//! token for one's own identity by answering the node's challenge.

use super::Http;
use crate::remote::Daemon;
use anyhow::{Result, anyhow, bail};
use base64::Engine;
use kiln_wire::{
    ChallengeRequest, ChallengeView, LoginRequest, RevokeRequest, RevokedView, TokenList,
    TokenMinted, TokenRequest, TokenView,
};
use std::path::Path;
use std::time::Duration;

impl Http {
    /// The daemon at `url`, which must answer.
    pub fn named(home: &Path, url: &str) -> Result<Http> {
        Daemon::find(home, Some(url))?
            .map(Http::new)
            .ok_or_else(|| anyhow!("no kiln daemon answers at {url}"))
    }

    /// Whether requests carry a token (`$KILN_TOKEN`).
    pub fn has_token(&self) -> bool {
        self.daemon.has_token()
    }

    /// `POST /api/kiln/v1/tokens`.
    pub fn token_create(&self, req: &TokenRequest) -> Result<TokenMinted> {
        self.daemon.post_json_body("/api/kiln/v1/tokens", req)
    }

    /// `GET /api/kiln/v1/tokens[?did=]`.
    pub fn tokens(&self, did: Option<&str>) -> Result<Vec<TokenView>> {
        let path = match did {
            Some(d) => format!(
                "/api/kiln/v1/tokens?did={}",
                percent_encoding::utf8_percent_encode(d, percent_encoding::NON_ALPHANUMERIC)
            ),
            None => "/api/kiln/v1/tokens".to_string(),
        };
        Ok(self.daemon.get_json::<TokenList>(&path)?.tokens)
    }

    /// `POST /api/kiln/v1/tokens/revoke`: the id revoked.
    pub fn token_revoke(&self, what: &str) -> Result<String> {
        let r: RevokedView = self.daemon.post_json_body(
            "/api/kiln/v1/tokens/revoke",
            &RevokeRequest {
                token: what.to_string(),
            },
        )?;
        Ok(r.id)
    }

    /// Sign the node's challenge with `key`: a token for that identity, with the roles the
    /// node gives it.
    pub fn sign_in(
        &self,
        key: &kiln_id::NodeKey,
        ttl: Option<Duration>,
        note: Option<String>,
    ) -> Result<TokenMinted> {
        let did = key.did();
        let c: ChallengeView = self.daemon.post_json_body(
            "/api/kiln/v1/auth/challenge",
            &ChallengeRequest { did: did.clone() },
        )?;
        let node = self.daemon.node()?;
        if c.node != node.did {
            bail!(
                "the node answered a challenge for {}, but it is {}",
                c.node,
                node.did
            );
        }
        let sig = key.sign(&kiln_node::auth::challenge_message(&c.node, &did, &c.nonce));
        self.daemon.post_json_body(
            "/api/kiln/v1/auth/token",
            &LoginRequest {
                did,
                nonce: c.nonce,
                signature: base64::engine::general_purpose::STANDARD.encode(sig),
                ttl_secs: ttl.map(|t| t.as_secs()),
                note,
            },
        )
    }
}
