//! The node as the repository opened in this process: kiln-node's operations, called as
//! the local administrator through the command line.

mod builds;

pub use builds::Service;

use super::{BuildHow, CarImport, Entry, Found, Listed, Node, RootfsCounts};
use crate::cli::AddArgs;
use anyhow::{Context, Result, anyhow, bail};
use indicatif::ProgressBar;
use kiln_build::{Plan, Recipe};
use kiln_core::export;
use kiln_core::import::{ImportOptions, Imported};
use kiln_core::{BlockSource, Cid};
use kiln_node::pins::{self, Whose};
use kiln_node::{builds::find_build, builds::no_log, content};
use kiln_store::journal::Query;
use kiln_store::{NewPin, PinMode, PinStatus, Store};
use kiln_wire::{
    BuildResult, BuildRowView, EventView, GcView, PinList, PruneRequest, PruneView, ScheduleView,
    StatView, SubmissionView, VerifyView,
};
use std::collections::BTreeMap;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// The repository at `home`, opened here.
pub struct Local {
    /// The store.
    pub store: Store,
    /// The repository directory (its configuration, its build directories).
    pub home: PathBuf,
}

/// What only a daemon does, asked of a repository opened here.
const NO_DAEMON: &str = "no daemon runs on this repository";

impl Local {
    /// Open the repository at `home` here, whatever else runs on it.
    pub fn open(home: &Path) -> Result<Local> {
        Ok(Local {
            store: crate::repo::open(home)?,
            home: home.to_path_buf(),
        })
    }

    /// The build engine's pieces over this repository.
    pub fn service(&self) -> Result<Service> {
        Service::new(self)
    }

    fn caller(&self) -> kiln_node::Caller {
        crate::cmd::cli_caller()
    }

    /// A pin the local administrator makes (`add`, `block put`, `dag import`), as the
    /// daemon makes for the same request.
    fn pin(&self, mode: PinMode) -> NewPin {
        NewPin::new(self.caller().owner(), mode)
    }
}

/// The node's users: managed on the repository itself (see `cmd/user.rs`).
impl Local {
    /// Every user, with their roles.
    pub fn users(&self) -> Result<Vec<kiln_store::users::User>> {
        Ok(kiln_node::users::list(&self.store, &self.caller())?)
    }

    /// Add a user, optionally with a role in a namespace.
    pub fn user_add(
        &self,
        did: &str,
        name: Option<&str>,
        role: Option<(kiln_node::users::Role, &str)>,
    ) -> Result<kiln_store::users::User> {
        Ok(kiln_node::users::add(
            &self.store,
            &self.caller(),
            did,
            name,
            role,
        )?)
    }

    /// Remove a user and its roles.
    pub fn user_rm(&self, did: &str) -> Result<()> {
        Ok(kiln_node::users::remove(&self.store, &self.caller(), did)?)
    }

    /// Give a user a role in a namespace: the role it had there.
    pub fn user_grant(
        &self,
        did: &str,
        role: kiln_node::users::Role,
        namespace: &str,
    ) -> Result<Option<String>> {
        Ok(kiln_node::users::grant(
            &self.store,
            &self.caller(),
            did,
            role,
            namespace,
        )?)
    }

    /// A user's quota (or the default's, `*`) and its use.
    pub fn quota(&self, did: &str) -> Result<kiln_node::quotas::Usage> {
        Ok(kiln_node::quotas::usage(&self.store, &self.caller(), did)?)
    }

    /// Set a user's quota (or the default's, `*`).
    pub fn quota_set(&self, did: &str, quota: kiln_store::quotas::Quota) -> Result<()> {
        Ok(kiln_node::quotas::set(
            &self.store,
            &self.caller(),
            did,
            quota,
        )?)
    }

    /// Take a user's role in a namespace away: the role it had.
    pub fn user_revoke(&self, did: &str, namespace: &str) -> Result<String> {
        Ok(kiln_node::users::revoke(
            &self.store,
            &self.caller(),
            did,
            namespace,
        )?)
    }
}

/// Tokens: issued and revoked on the repository itself, with its node key (see
/// `cmd/token.rs`).
impl Local {
    fn auth(&self) -> Result<kiln_node::auth::Auth> {
        Ok(kiln_node::auth::Auth::new(crate::repo::identity(
            &self.home,
        )?))
    }

    /// Issue a token.
    pub fn token_create(&self, req: kiln_node::tokens::Request) -> Result<kiln_id::token::Minted> {
        Ok(kiln_node::tokens::create(
            &self.store,
            &self.auth()?,
            &self.caller(),
            req,
        )?)
    }

    /// The tokens issued (to `did` only, if given).
    pub fn tokens(&self, did: Option<&str>) -> Result<Vec<kiln_wire::TokenView>> {
        Ok(kiln_node::tokens::list(&self.store, &self.caller(), did)?
            .into_iter()
            .map(|t| kiln_node::view::token(&t))
            .collect())
    }

    /// Revoke a token (by id, or whole): the id revoked.
    pub fn token_revoke(&self, what: &str) -> Result<String> {
        Ok(kiln_node::tokens::revoke(
            &self.store,
            &self.auth()?,
            &self.caller(),
            what,
        )?)
    }
}

impl Node for Local {
    fn addresses(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    fn gc(&self) -> Result<GcView> {
        let (cfg, _) = crate::config::Config::load(None, &self.home)?;
        let done = content::gc(&self.store, &self.caller(), cfg.keep_events()?, &mut |_| {})?;
        Ok(kiln_node::view::gc(&done))
    }

    fn stat(&self) -> Result<StatView> {
        let stat = content::stat(&self.store, &self.caller())?;
        Ok(kiln_node::view::stat(&stat, &self.home))
    }

    fn verify(&self) -> Result<VerifyView> {
        let report = content::verify(&self.store, &self.caller())?;
        Ok(kiln_node::view::verify(&report))
    }

    fn events(&self, q: &Query) -> Result<Vec<EventView>> {
        Ok(kiln_node::journal::events(&self.store, &self.caller(), q)?
            .iter()
            .map(kiln_node::view::event)
            .collect())
    }

    fn pin_add(
        &self,
        path: &str,
        recursive: bool,
        name: Option<&str>,
        namespace: Option<&str>,
    ) -> Result<String> {
        let mode = if recursive {
            PinMode::Recursive
        } else {
            PinMode::Direct
        };
        Ok(pins::add(&self.store, &self.caller(), path, mode, name, namespace)?.to_string())
    }

    fn pin_rm(&self, path: &str, whose: &Whose) -> Result<(String, Vec<String>)> {
        let done = pins::remove(&self.store, &self.caller(), path, whose)?;
        let left = pins::owners(&done.pins.remaining)
            .iter()
            .map(|o| o.to_string())
            .collect();
        Ok((done.cid.to_string(), left))
    }

    fn pin_status(&self, cid: &Cid) -> Result<Option<String>> {
        Ok(
            pins::status(&self.store, &self.caller(), cid)?.map(|s| match s {
                PinStatus::Indirect { via } => format!("indirect through {via}"),
                s => s.to_string(),
            }),
        )
    }

    fn pins(&self, indirect: bool) -> Result<PinList> {
        let caller = self.caller();
        Ok(PinList {
            pins: pins::list(&self.store, &caller)?
                .iter()
                .map(kiln_node::view::pin)
                .collect(),
            indirect: if indirect {
                pins::indirect(&self.store, &caller)?
                    .iter()
                    .map(|c| c.to_string())
                    .collect()
            } else {
                Vec::new()
            },
        })
    }

    fn blocks(&self) -> &dyn BlockSource {
        &self.store
    }

    fn cat(&self, path: &str, offset: u64, length: Option<u64>, out: &mut dyn Write) -> Result<()> {
        let caller = self.caller();
        let cid = content::file(&self.store, &caller, path)?;
        content::read_file(&self.store, &caller, &cid, offset, length, out)?;
        Ok(())
    }

    fn ls(&self, path: &str) -> Result<Vec<Listed>> {
        let caller = self.caller();
        let cid = pins::resolve(&self.store, path)?;
        let mut out = Vec::new();
        for e in content::list(&self.store, &caller, &cid)? {
            let entry = match content::child(&self.store, &caller, &e)? {
                Some(export::Node::Directory { .. }) => Entry::Directory,
                Some(export::Node::File { size }) => Entry::File(size),
                Some(export::Node::Symlink { .. }) => Entry::Symlink(e.tsize),
                None => Entry::Missing(e.tsize),
            };
            out.push(Listed {
                cid: e.cid.to_string(),
                name: e.name,
                entry,
            });
        }
        Ok(out)
    }

    fn block_get(&self, cid: &Cid) -> Result<Vec<u8>> {
        Ok(content::block(&self.store, &self.caller(), cid)?)
    }

    fn block_stat(&self, cid: &Cid) -> Result<u64> {
        Ok(content::block_size(&self.store, &self.caller(), cid)?)
    }

    fn block_put(
        &self,
        blocks: &mut dyn Iterator<Item = Result<(Cid, Vec<u8>)>>,
        codec: &str,
        pin: bool,
    ) -> Result<Vec<String>> {
        let caller = self.caller();
        // All the blocks, or none: they are committed together.
        let mut session = content::session(&self.store, &caller)?;
        let mut cids = Vec::new();
        for b in blocks {
            let (cid, data) = b?;
            let links = kiln_core::links::links_of(&cid, &data)
                .with_context(|| format!("block {cid} is not valid {codec}"))?;
            session.put(&cid, &data, &links)?;
            cids.push(cid);
        }
        let pin = pin.then(|| self.pin(PinMode::Recursive));
        content::commit(
            session,
            &caller,
            kiln_node::journal::action::BLOCK_PUT,
            &cids,
            pin.as_ref(),
        )?;
        Ok(cids.iter().map(|c| c.to_string()).collect())
    }

    fn block_rm(&self, cid: &Cid, force: bool) -> Result<Option<Result<(), String>>> {
        Ok(
            match content::remove_block(&self.store, &self.caller(), cid, force) {
                Ok(true) => Some(Ok(())),
                Ok(false) => None,
                Err(e) => Some(Err(e.to_string())),
            },
        )
    }

    fn dag_export(&self, path: &str, out: &mut dyn Write) -> Result<()> {
        let cid = pins::resolve(&self.store, path)?;
        kiln_core::car::export_dag(&self.store, &cid, out)?;
        Ok(())
    }

    fn dag_import(
        &self,
        inputs: Vec<(String, Box<dyn Read + Send>)>,
        pin: bool,
    ) -> Result<CarImport> {
        let caller = self.caller();
        let mut session = content::session(&self.store, &caller)?;
        let mut blocks = 0u64;
        let mut roots = Vec::new();
        for (name, input) in inputs {
            let got =
                kiln_core::car::import(BufReader::with_capacity(1 << 20, input), &mut session)
                    .with_context(|| name.clone())?;
            roots.extend(got.roots);
            blocks += got.blocks;
        }
        let new_pin = pin.then(|| self.pin(PinMode::Recursive));
        content::commit(
            session,
            &caller,
            kiln_node::journal::action::IMPORT,
            &roots,
            new_pin.as_ref(),
        )
        .context("import not committed")?;
        let pinned = if pin {
            roots.iter().map(|r| r.to_string()).collect()
        } else {
            Vec::new()
        };
        Ok(CarImport { pinned, blocks })
    }

    fn add(&self, args: &AddArgs, opts: ImportOptions, bar: ProgressBar) -> Result<()> {
        let caller = self.caller();
        let mut session = content::session(&self.store, &caller)?;
        let roots = crate::cmd::add::import(args, opts, &mut session, bar)?;
        let pin = crate::cli::truthy(&args.pin).then(|| self.pin(PinMode::Recursive));
        let cids: Vec<_> = roots.iter().map(|r| r.cid).collect();
        content::commit(
            session,
            &caller,
            kiln_node::journal::action::ADD,
            &cids,
            pin.as_ref(),
        )
        .context("committing added blocks")?;
        crate::cmd::add::print_last(args, &roots);
        Ok(())
    }

    fn rootfs_import(&self, path: &Path, name: &str) -> Result<(Imported, RootfsCounts)> {
        let caller = self.caller();
        let mut session = content::session(&self.store, &caller)?;
        let (root, counts) = crate::cmd::rootfs::read_tree(&mut session, path)?;
        let pin = NewPin::new(kiln_build::owners::rootfs(), PinMode::Recursive).named(Some(name));
        content::commit(
            session,
            &caller,
            content::import_action(&pin),
            &[root.cid],
            Some(&pin),
        )
        .context("import not committed")?;
        Ok((root, counts))
    }

    fn build(&self, recipe: &Recipe, plan: &Plan, how: &BuildHow) -> Result<BuildResult> {
        builds::build(self, recipe, plan, how)
    }

    fn find_or_build(&self, action: &Cid, timeout: &str) -> Result<Found> {
        let limit = kiln_wire::parse_duration(timeout).map_err(|e| anyhow!("{e}"))?;
        builds::find_or_build(self, action, limit)
    }

    fn builds(&self, limit: usize) -> Result<Vec<BuildRowView>> {
        let svc = self.service()?;
        let rows = svc.builds()?.recent(limit).map_err(|e| anyhow!("{e}"))?;
        Ok(rows.iter().map(kiln_node::view::build_row).collect())
    }

    fn build_log(&self, build: &str, out: &mut dyn Write) -> Result<()> {
        let svc = self.service()?;
        let builds = svc.builds()?;
        let row = find_build(builds.index(), build).map_err(|e| anyhow!("{e}"))?;
        let Some(log) = row.log else {
            bail!("{}", no_log(&row));
        };
        content::read_file(&self.store, &self.caller(), &log, 0, None, out)
            .with_context(|| format!("reading log {log} of build {}", row.id))?;
        Ok(())
    }

    fn prune(&self, req: &PruneRequest) -> Result<PruneView> {
        let svc = self.service()?;
        let builds = svc.builds()?;
        Ok(kiln_node::builds::prune::prune(
            &self.store,
            builds.index(),
            &self.caller(),
            req,
        )?)
    }

    fn schedules(&self) -> Result<Vec<ScheduleView>> {
        // Listed from the index; with no daemon running, nothing checks them.
        let svc = self.service()?;
        let rows = svc
            .builds()?
            .index()
            .schedules()
            .map_err(|e| anyhow!("{e}"))?;
        Ok(rows
            .iter()
            .map(kiln_node::builds::schedules::view_of)
            .collect())
    }

    fn unschedule(&self, id: i64) -> Result<ScheduleView> {
        let svc = self.service()?;
        let builds = svc.builds()?;
        let row = kiln_node::builds::schedules::unregister(
            &self.store,
            builds.index(),
            id,
            &self.caller(),
        )
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("no schedule {id} (kiln schedules lists them)"))?;
        Ok(kiln_node::view::schedule(&row, None, false, None))
    }

    fn schedule(&self, _: &Recipe, _: &BTreeMap<String, String>) -> Result<(bool, ScheduleView)> {
        bail!(
            "kiln build --schedule hands the recipe to the daemon, which builds it on its schedule, but {NO_DAEMON} (start one with `kiln daemon`)"
        )
    }

    fn cancel(&self, _: &str) -> Result<(bool, SubmissionView)> {
        bail!(
            "{NO_DAEMON}: only a build submitted to the daemon can be cancelled (a build run by kiln build --no-daemon stops with Ctrl-C)"
        )
    }

    fn submission(&self, id: &str) -> Result<SubmissionView> {
        bail!("{NO_DAEMON}: build {id} is not a submission to a daemon")
    }
}

/// Invites: made on the repository itself, sealed with its node key.
impl Local {
    /// Make an invite; the bundle names the running daemon's API, if one runs.
    pub fn invite_create(
        &self,
        role: &str,
        namespace: Option<&str>,
        ttl: std::time::Duration,
    ) -> Result<kiln_wire::InviteCreated> {
        let key = crate::repo::identity(&self.home)?;
        let addresses = std::fs::read_to_string(self.home.join(crate::remote::API_FILE))
            .map(|a| vec![a.trim().to_string()])
            .unwrap_or_default();
        Ok(kiln_node::invites::create(
            &self.store,
            &self.caller(),
            &key,
            role,
            namespace,
            ttl,
            addresses,
        )?)
    }

    /// Every invite.
    pub fn invites(&self) -> Result<Vec<kiln_wire::InviteView>> {
        Ok(kiln_node::invites::list(&self.store, &self.caller())?)
    }
}
