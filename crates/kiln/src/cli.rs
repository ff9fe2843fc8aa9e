//! Command-line definitions (clap derive). Parsing only; `cmd` does the work.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// kiln: a self-hosted, content-addressed cloud for software.
///
/// Stores file trees by content ID exactly as IPFS does (same CIDs as kubo and Helia),
/// pins, garbage-collects, moves them as CAR files, and serves them (`kiln daemon`: the
/// Kubo RPC API, kiln's API, a web UI and the IPFS gateway). The repository is
/// `$KILN_HOME` (default `~/.kiln`), created on first use; while a daemon runs on it,
/// commands send their work to the daemon.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// Repository directory.
    #[arg(long, global = true, env = "KILN_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Send the work to the kiln daemon at this URL (e.g. `http://127.0.0.1:5001`). Without
    /// it, commands use the daemon running on the repository if there is one (it writes its
    /// address to `$KILN_HOME/api`), and open the repository directly otherwise.
    #[arg(long, global = true, env = "KILN_NODE", value_name = "URL")]
    pub node: Option<String>,
    /// Open the repository directly even when a daemon runs on it.
    #[arg(long, global = true, conflicts_with = "node")]
    pub no_daemon: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the repository (done automatically on first use).
    Init,
    /// Show the node's identity: peer ID, did:key, public key, version (JSON like `ipfs id`).
    Id,
    /// Your own identity: an ed25519 key written as a did:key, kept apart from any node's key.
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// The identities this node knows, and the role each holds per namespace.
    ///
    /// Roles, most first: admin (everything, users included), maintainer (build, which
    /// runs code on the node, and publish), writer (add, pin), reader. A role is held in a
    /// namespace (which scopes pins, schedules, names and packages) or, without
    /// `--namespace`, in every namespace (`*`). Managed on the repository itself, whether or
    /// not a daemon runs on it.
    #[command(subcommand)]
    User(UserCommand),
    /// Capability tokens: what a client sends (`Authorization: Bearer TOKEN`) to act on a
    /// node over TCP.
    ///
    /// A token carries an identity, its roles (never more than the node gives it: a role
    /// taken away, or the user removed, takes effect at once) and an expiry; its holder can
    /// narrow it offline (`attenuate`). Commands on the repository need none: they reach the
    /// daemon through `$KILN_HOME/api.sock` as the local administrator. Elsewhere, set
    /// `KILN_TOKEN` and `--node URL`.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Invite codes: let another identity join this node with a role.
    #[command(subcommand)]
    Invite(InviteCommand),
    /// Join a node with an invite code: registers your identity there with the role the
    /// code grants, and remembers the node.
    Join {
        /// The node's API (e.g. `https://node.example.org:5001`).
        url: String,
        /// The code `kiln invite create` printed.
        code: String,
    },
    /// Sign a browser in to the daemon's web UI: `kiln ui login` prints a link that works
    /// once, for ten minutes, and gives the browser that opens it a session (an HttpOnly,
    /// SameSite=Strict cookie) for twelve hours, or until it signs out. On the node's
    /// repository the session is the local administrator's; with `--node URL` and
    /// `$KILN_TOKEN` it is the token's identity's, sees what that identity may see, and ends
    /// when the token is revoked or expires. `kiln ui logout --all` (administrators) ends
    /// every session. Needs the daemon running (sessions live in it: a restart ends them).
    #[command(subcommand)]
    Ui(UiCommand),
    /// Run the node: Kubo RPC, kiln's API and the web UI on `--api`, the gateway on `--gateway`.
    ///
    /// Binds 127.0.0.1 by default (API and web UI 5001, gateway 8080). Port 0 picks a free
    /// port; the addresses actually bound are printed on lines of their own (`API listening on
    /// http://ADDR`, `Gateway listening on http://ADDR`, then `Daemon is ready`) so scripts can
    /// find them. SIGINT or SIGTERM stop it gracefully: new connections are refused, requests
    /// in flight finish, then the store is closed. Logs go to stderr; set `RUST_LOG` (e.g.
    /// `RUST_LOG=debug`) to change the level.
    ///
    /// Configuration: `--config FILE`, else `$KILN_HOME/config.toml` if it exists; flags win
    /// over the file. Every key is optional:
    ///
    ///   [api]
    ///   listen = "127.0.0.1:5001"        # RPC API listener
    ///   open_loopback = false            # loopback clients need no token (see --open-loopback)
    ///   tls_cert = "/etc/kiln/cert.pem"  # TLS on this listener (with tls_key; see --tls-cert)
    ///   tls_key = "/etc/kiln/key.pem"
    ///   allow_plaintext = false          # a non-loopback address without TLS (--allow-plaintext)
    ///   [gateway]
    ///   listen = "127.0.0.1:8080"        # read-only gateway listener (tls_cert, tls_key too)
    ///   [limits]
    ///   max_body_bytes = 17179869184     # largest request body (16 GiB)
    ///   per_ip_concurrency = 256         # requests in flight per client IP (then 429)
    ///   max_connections = 4096           # open connections per listener (more wait)
    ///   max_header_bytes = 65536         # largest request line + headers (then 431)
    ///   header_timeout_secs = 10         # time to send a request head (then closed)
    ///   idle_timeout_secs = 60           # no bytes either way for this long: closed
    ///   ip_requests_per_sec = 100        # per client address (then 429 + Retry-After; 0: off)
    ///   ip_burst = 1000                  #   requests at once after a quiet period
    ///   identity_requests_per_sec = 50   # per identity (a token's did:key; 0: off)
    ///   identity_burst = 500
    ///   limit_loopback = false           # loopback addresses are not limited per address
    ///   [events]
    ///   keep = "90d"                     # how long the event journal keeps events
    ///
    /// While it runs, the daemon's API address is in `$KILN_HOME/api` and it listens on the
    /// Unix socket `$KILN_HOME/api.sock` too (mode 0600): kiln commands run on the repository
    /// send their work there, as the local administrator (the daemon checks the peer's user).
    /// Every TCP client needs a token (`kiln token create`; `Authorization: Bearer TOKEN`),
    /// except for reading content through the gateway.
    #[command(verbatim_doc_comment)]
    Daemon(DaemonArgs),
    /// Add files or directories; prints `added CID NAME` lines like `ipfs add`.
    Add(AddArgs),
    /// Print the bytes of a file.
    Cat(CatArgs),
    /// Write a file, directory or symlink to the local file system.
    Get(GetArgs),
    /// List a directory: `CID SIZE NAME` (directories end in `/`).
    Ls(LsArgs),
    /// Pin, unpin and list pins.
    #[command(subcommand)]
    Pin(PinCommand),
    /// Remove every block not reachable from a pin.
    Gc,
    /// Repository statistics and integrity.
    #[command(subcommand)]
    Repo(RepoCommand),
    /// Raw block operations.
    #[command(subcommand)]
    Block(BlockCommand),
    /// DAG import and export as CAR files.
    #[command(subcommand)]
    Dag(DagCommand),
    /// Root file systems for builds: import a directory or a tar archive.
    ///
    /// A build step with `builder = "<CID>"` runs in the root file system that CID names
    /// (its `/`, read-only). `kiln rootfs import` makes one from a directory or a tar archive
    /// (such as a distribution's minimal root file system) and pins it.
    #[command(subcommand)]
    Rootfs(RootfsCommand),
    /// Build the recipe (`kiln.toml`) of a source tree: every step whose action is not
    /// cached runs in kiln's sandbox (independent steps at once), its log streams to stderr
    /// and is stored, and each output is printed as `CID STEP:PATH`. The recipe format is
    /// documented in `crates/kiln-build/RECIPES.md`.
    ///
    /// When a daemon runs on the repository, the build runs there: the recipe and its source
    /// inputs are sent to it, and its log is followed here (interrupting this command does
    /// not stop the build; `kiln builds` lists it). `--no-daemon` builds in this process.
    ///
    /// `--schedule` hands the recipe to the daemon to build on the recipe's `schedule`
    /// instead: see `kiln schedules`.
    Build(BuildArgs),
    /// Recent builds, newest first: number, status, cached or run, duration, step, record.
    Builds(BuildsArgs),
    /// The event journal: every change made to this repository (adds, imports, pins, GC
    /// runs, builds, schedules), who asked, through what, when, its target and outcome,
    /// whether it came through the daemon or the command line directly. One line each,
    /// oldest first: `TIME WHO/VIA ACTION TARGET DETAIL`.
    ///
    /// Events are kept 90 days (`[events] keep = "30d"` in config.toml changes it); older
    /// ones are pruned after each GC run and when the daemon starts.
    ///
    /// This is the node's audit trail (`kiln audit` is the same command): an admin sees
    /// every identity's events and may pick one with `--who DID`; anyone else sees only its
    /// own. A request refused for want of a token or a role changes nothing and is not
    /// recorded.
    #[command(visible_alias = "audit")]
    Events(EventsArgs),
    /// Print the log of a build: its number (from `kiln builds`), record CID or action CID.
    Log(LogArgs),
    /// Show a build record (a record CID, or a build number) and check its signature
    /// against the builder's did:key; exit status 1 if it does not hold.
    Record(LogArgs),
    /// Recipes the daemon builds on their schedule (registered with `kiln build --schedule`):
    /// number, schedule, recipe, source, next check, what the last check found, last build.
    ///
    /// At each scheduled time the daemon asks the recipe's git repositories where its refs
    /// are; when one moved and that changed an action key, it builds the recipe (a build
    /// like any other: `kiln builds`, `kiln log sN`). The first check after registration
    /// builds what is not cached yet. Schedules survive a restart of the daemon; each keeps
    /// its source tree pinned (`schedule:ID`) until it is removed. With no daemon running,
    /// `kiln schedules` reads them from the repository (nothing checks them until a daemon
    /// starts) and `rm` removes them there.
    Schedules(SchedulesArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SchedulesArgs {
    #[command(subcommand)]
    pub command: Option<SchedulesCommand>,
}

/// `kiln user`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (an ed25519 did:key), optionally with a role.
    Add {
        /// The user's identity (`kiln identity show` prints one's own).
        did: String,
        /// A name for people to read.
        #[arg(long)]
        name: Option<String>,
        /// A role to give it: admin, maintainer, writer or reader.
        #[arg(long)]
        role: Option<String>,
        /// Where the role holds (default: every namespace).
        #[arg(long, requires = "role")]
        namespace: Option<String>,
    },
    /// Remove a user and every role it holds.
    Rm {
        /// The user's identity.
        did: String,
    },
    /// List users: `DID ROLE@NAMESPACE,… [NAME]`.
    Ls {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Give a user a role (in place of the one it had there).
    Grant {
        /// The user's identity.
        did: String,
        /// admin, maintainer, writer or reader.
        role: String,
        /// Where the role holds (default: every namespace).
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Take a user's role in a namespace away.
    Revoke {
        /// The user's identity.
        did: String,
        /// The namespace (default: every namespace, `*`).
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Show or set a user's quota: the bytes its pins may hold (each block counted once,
    /// however many of its pins share it) and the builds it may run at once. `*` is the
    /// default of every user without a quota of its own. With no limit given, prints the
    /// quota and what the user uses of it.
    ///
    /// Over its pinned-bytes quota a pin is refused (403, reason `quota_pinned_bytes`) and
    /// nothing is pinned; at its builds quota a new build is refused until one ends (429,
    /// `quota_builds`, with `Retry-After`). The local administrator has no quota.
    Quota {
        /// The user's identity, or `*` for the default.
        did: String,
        /// Bytes its pins may hold: `500MiB`, `10GiB`; `none` for no limit; `default` to
        /// follow the default quota.
        #[arg(long, value_name = "SIZE")]
        pinned_bytes: Option<String>,
        /// Builds it may run at once: a number; `none`; `default`.
        #[arg(long, value_name = "N")]
        builds: Option<String>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `kiln invite`.
#[derive(Debug, Subcommand)]
pub enum InviteCommand {
    /// Make an invite and print its code (the only time it is shown). It works once.
    Create {
        /// The role it grants: reader, writer, maintainer or admin.
        #[arg(long)]
        role: String,
        /// The namespace (default: every namespace).
        #[arg(long)]
        namespace: Option<String>,
        /// How long it is good for (`24h`, `30m`, `7d`; at most 30 days).
        #[arg(long, default_value = "24h")]
        expires: String,
        /// As JSON: code, id, role, namespace, expires_ms.
        #[arg(long)]
        json: bool,
    },
    /// The invites made: `ID ROLE@NAMESPACE EXPIRES USED-BY` (never their codes).
    Ls {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `kiln ui`.
#[derive(Debug, Subcommand)]
pub enum UiCommand {
    /// Print a one-time sign-in link for the web UI.
    Login {
        /// As JSON: url, expires.
        #[arg(long)]
        json: bool,
    },
    /// End web UI sessions.
    Logout {
        /// Every session (and unused links); required.
        #[arg(long)]
        all: bool,
    },
}

/// `kiln token`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a capability token and print it (the only time it is shown).
    ///
    /// On the repository (or with `--node URL` and a token in `$KILN_TOKEN`), an
    /// administrator issues tokens for any user; a user, for itself. With `--node URL` and no
    /// token, your identity signs the node's challenge and receives a token for itself.
    Create {
        /// Whose token (a user's did:key; default: your identity).
        #[arg(long = "for", value_name = "DID")]
        did: Option<String>,
        /// A role it carries, `ROLE` (every namespace) or `ROLE@NAMESPACE`; repeat for more
        /// (default: every role its holder has). It never carries more than its holder has.
        #[arg(long, value_name = "ROLE[@NS]")]
        role: Vec<String>,
        /// How long it lives: `90s`, `15m`, `12h`, `30d` (default 30d, at most 366d).
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// What it is for (shown by `kiln token ls`).
        #[arg(long)]
        note: Option<String>,
        /// As JSON: token, id, expires.
        #[arg(long)]
        json: bool,
    },
    /// List the tokens issued (ids, holders, expiry; never the tokens): all of them for an
    /// administrator, one's own for a user.
    Ls {
        /// Only those of this identity.
        #[arg(long = "for", value_name = "DID")]
        did: Option<String>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token at once, on every route: by its id (`kiln token ls`), which revokes
    /// it and every token narrowed from it, or given whole (`-`: read from standard input),
    /// which revokes that token and those narrowed from it.
    Revoke {
        /// A token id, a token, or `-`.
        token: String,
    },
    /// Narrow a token offline (no node needed): the new one allows only what both allow.
    ///
    /// Example: a CI job may pin in namespace ci for an hour:
    /// `kiln token attenuate "$TOKEN" --only pin --namespace ci --ttl 1h`.
    Attenuate {
        /// The token (`-`: read from standard input).
        token: String,
        /// Only these operations: read, add, pin, build, publish, admin (comma-separated or
        /// repeated).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Only in this namespace.
        #[arg(long)]
        namespace: Option<String>,
        /// For at most this long from now: `90s`, `15m`, `1h`, `7d`.
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
    },
    /// Print what a token says (its blocks), offline; its signatures are checked only by
    /// the node that issued it.
    Inspect {
        /// The token (`-`: read from standard input).
        token: String,
    },
}

/// `kiln identity`.
#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Create your identity and print its did:key.
    ///
    /// Kept in `$KILN_IDENTITY`, else `$XDG_CONFIG_HOME/kiln/identity.key`, else
    /// `~/.config/kiln/identity.key` (mode 0600, in a directory of mode 0700), never in a
    /// repository.
    New {
        /// Replace the identity there is (lost unless exported first).
        #[arg(long)]
        force: bool,
    },
    /// Print your identity's did:key.
    Show {
        /// As JSON: the did, the public key (hex) and where it is kept.
        #[arg(long)]
        json: bool,
    },
    /// Write your private key as PKCS#8 PEM (what `openssl pkey` reads).
    Export {
        /// A new file (mode 0600) to write; without it, standard output, unless it is a
        /// terminal.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Make the ed25519 private key in FILE (PKCS#8 PEM, `-` for standard input) your
    /// identity.
    Import {
        /// The key file (as `kiln identity export` or `openssl genpkey -algorithm ed25519`
        /// write it).
        file: PathBuf,
        /// Replace the identity there is (lost unless exported first).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SchedulesCommand {
    /// List the schedules (the default).
    Ls,
    /// Stop building a recipe on its schedule and forget it; its source is unpinned. A build
    /// it already started goes on.
    Rm {
        /// The schedule's number (from `kiln schedules`).
        #[arg(value_parser = clap::value_parser!(i64).range(1..))]
        id: i64,
    },
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The source tree holding `kiln.toml`.
    #[arg(default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Print the steps and their action keys in build order; build nothing. The actions
    /// and their source inputs are stored (unpinned), so `kiln get ACTION` can build them.
    #[arg(long)]
    pub plan: bool,
    /// Run every step even when cached and report whether its outputs are bit-identical
    /// to the cached ones (exit status 1 if any differ).
    #[arg(long, conflicts_with = "plan")]
    pub check: bool,
    /// After building, keep watching DIR: whenever a file changes, plan again and build the
    /// steps whose action keys changed.
    #[arg(long, conflicts_with_all = ["plan", "check"])]
    pub watch: bool,
    /// Register the recipe with the running daemon instead of building it now: the daemon
    /// builds it on the recipe's `schedule` whenever a git input's ref moved and that
    /// changed an action key (the first check builds what is not cached). Prints the
    /// schedule's number and its next check; `kiln schedules` lists them. Needs a daemon.
    #[arg(long, conflicts_with_all = ["plan", "check", "watch", "slots"])]
    pub schedule: bool,
    /// How often `--watch` looks for changes.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1s",
        requires = "watch"
    )]
    pub interval: String,
    /// Steps run at once (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub slots: Option<u16>,
    /// A recipe parameter, replacing its default (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
}

/// Parse `true`/`false` flags that may be given bare (`--pin`) or with a value (`--pin=false`).
fn bool_flag() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(["true", "false"])
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Files or directories to add; `-` reads standard input, as does no path at all.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Add directories recursively.
    #[arg(short, long)]
    pub recursive: bool,
    /// Print only the final root CID.
    #[arg(short = 'Q', long)]
    pub quieter: bool,
    /// Print only CIDs, one per line.
    #[arg(short, long)]
    pub quiet: bool,
    /// Only compute the CIDs; store nothing.
    #[arg(short = 'n', long)]
    pub only_hash: bool,
    /// Wrap the added paths in a directory.
    #[arg(short = 'w', long)]
    pub wrap_with_directory: bool,
    /// Include files whose names start with a dot.
    #[arg(short = 'H', long)]
    pub hidden: bool,
    /// CID version: 0 gives exactly plain `ipfs add`, 1 exactly `ipfs add --cid-version=1`.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub cid_version: Option<u8>,
    /// Store file chunks as raw blocks (default: on with CIDv1, off with CIDv0).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = bool_flag())]
    pub raw_leaves: Option<String>,
    /// Chunker: `size-N` (fixed N-byte chunks, at most 1 MiB).
    #[arg(long, value_name = "size-N")]
    pub chunker: Option<String>,
    /// Import profile (IPIP-499): unixfs-v0-2015 or unixfs-v1-2025 (the default).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Pin the added roots (`--pin=false` to leave them unpinned).
    #[arg(long, num_args = 0..=1, default_value = "true", default_missing_value = "true", require_equals = true, value_parser = bool_flag())]
    pub pin: String,
    /// Show a progress bar (default: when stderr is a terminal).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true, value_parser = bool_flag())]
    pub progress: Option<String>,
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Address of the RPC API listener [default: 127.0.0.1:5001].
    #[arg(long, value_name = "ADDR:PORT")]
    pub api: Option<std::net::SocketAddr>,
    /// Address of the read-only gateway listener [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR:PORT")]
    pub gateway: Option<std::net::SocketAddr>,
    /// Configuration file [default: $KILN_HOME/config.toml, if present].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Let clients on a loopback address use the API and the web UI as the local
    /// administrator without a token. Off by default: every TCP client then needs a token,
    /// which shuts out anything else running on this machine (a build step included) —
    /// the command line reaches the node through `$KILN_HOME/api.sock` anyway.
    #[arg(long)]
    pub open_loopback: bool,
    /// Serve both listeners over TLS with this certificate chain (PEM; with --tls-key).
    /// `[api]`/`[gateway]` `tls_cert` and `tls_key` set one listener's.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Listen on an address other than loopback without TLS (tokens and content then cross
    /// the network in the clear; the log says so). Without it such a listener is refused:
    /// give it TLS, or keep it on loopback behind a reverse proxy that terminates TLS.
    #[arg(long)]
    pub allow_plaintext: bool,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// CID, optionally with a path below it (`CID/dir/file`).
    pub path: String,
    /// Start at this byte.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Print at most this many bytes.
    #[arg(long, short = 'l')]
    pub length: Option<u64>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BuildsArgs {
    #[command(subcommand)]
    pub command: Option<BuildsCommand>,
    /// How many to list.
    #[arg(short = 'n', long, default_value_t = 20)]
    pub limit: usize,
}

#[derive(Debug, Subcommand)]
pub enum BuildsCommand {
    /// Cancel a build the daemon is running (`sN`, as `kiln build` and `kiln builds` name
    /// it): the process trees of its running steps are killed, the steps recorded as
    /// cancelled, and no other step starts. A build that has ended is left as it is.
    Cancel {
        /// The submission: `sN`.
        id: String,
    },
    /// Remove old builds from the history. The records and logs only they named are no
    /// longer kept (`kiln gc` then frees their blocks, unless another pin holds them) and
    /// the cached results they were are forgotten: a later build of those steps runs
    /// again. Running builds are never removed. With both rules, a build is kept if either
    /// keeps it.
    #[command(group(clap::ArgGroup::new("rule").required(true).multiple(true).args(["keep", "older_than"])))]
    Prune {
        /// Keep the newest N builds.
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
        /// Remove only builds that ended longer ago than this: `30d`, `12h`, `90m`.
        #[arg(long, value_name = "AGE")]
        older_than: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Keep printing events as they are recorded, until interrupted.
    #[arg(short, long)]
    pub follow: bool,
    /// One JSON object per line (id, at_ms, who, via, action, target, ok, detail).
    #[arg(long)]
    pub json: bool,
    /// Only events since T: a duration ago (`10m`, `2h`, `7d`) or a UTC time
    /// (`2026-12-01`, `2026-12-01T10:00:00Z`).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Print at most the last N events (without --since: the last 50).
    #[arg(short = 'n', long, value_name = "N")]
    pub limit: Option<usize>,
    /// Only the events of this caller: a did:key, `local` (the repository's owner),
    /// `schedule:N`, `build`.
    #[arg(long, value_name = "DID")]
    pub who: Option<String>,
    /// Only the events of this action (`add`, `pin`, `unpin`, `gc`, `token create`, …).
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Build number, record CID or action CID.
    pub build: String,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// CID, optionally with a path below it. An action CID (from `kiln build --plan`) means
    /// its output: found in the action cache, or built now if the action and its inputs
    /// are here (`ACTION/PATH` names one of several outputs).
    pub path: String,
    /// For an action: give up if its output is not there or built within this time
    /// (`30s`, `5m`, `1h`).
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub timeout: String,
    /// Where to write (default: the last path segment, or the CID). Must not exist.
    #[arg(short, long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Directory CIDs, optionally with paths below them.
    #[arg(required = true)]
    pub paths: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum PinCommand {
    /// Pin CIDs (recursively by default); every block must be in the repository.
    Add {
        /// CIDs (or CID/paths) to pin.
        #[arg(required = true)]
        paths: Vec<String>,
        /// Pin the whole DAG (`--recursive=false` pins only the root block).
        #[arg(short, long, num_args = 0..=1, default_value = "true", default_missing_value = "true", require_equals = true, value_parser = bool_flag())]
        recursive: String,
        /// A name for the pin.
        #[arg(long)]
        name: Option<String>,
        /// The namespace the pin lives in (default: `default`): pinning and unpinning it
        /// need the writer role there.
        #[arg(long)]
        namespace: Option<String>,
    },
    /// Remove your pins of CIDs (others' pins of them stay, and are named).
    Rm {
        /// Pinned CIDs.
        #[arg(required = true)]
        paths: Vec<String>,
        /// Remove this owner's pins instead (e.g. `rootfs`, `build`, `schedule:3`).
        #[arg(long, conflicts_with = "all")]
        owner: Option<String>,
        /// Remove every owner's pins.
        #[arg(long)]
        all: bool,
    },
    /// Pin on remote pinning services (any Pinning Service API: another kiln, or a
    /// commercial service), as `ipfs pin remote` does.
    #[command(subcommand)]
    Remote(PinRemoteCommand),
    /// List pins: `CID TYPE OWNER[@NAMESPACE] [NAME]`, one line per pin (a CID may have
    /// several owners; the namespace is shown when it is not `default`).
    Ls {
        /// Only these CIDs (reports how each one is pinned).
        paths: Vec<String>,
        /// recursive, direct, indirect or all (= recursive and direct).
        #[arg(short = 't', long = "type", default_value = "all")]
        kind: String,
        /// Print only CIDs.
        #[arg(short, long)]
        quiet: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum PinRemoteCommand {
    /// Ask a service to pin a CID; waits until it is pinned unless `--background`. Prints
    /// `CID:`, `Name:` and `Status:` lines.
    Add {
        /// The CID (or /ipfs/CID).
        cid: String,
        /// The service, as named by `kiln pin remote service add`.
        #[arg(long)]
        service: String,
        /// A name for the pin.
        #[arg(long)]
        name: Option<String>,
        /// Where the service may fetch the content (multiaddrs ending /http or /https, or
        /// URLs of trustless gateways); repeatable.
        #[arg(long = "origin", value_name = "ADDR")]
        origins: Vec<String>,
        /// Return once the service has the request, without waiting for the pin.
        #[arg(long)]
        background: bool,
        /// How long to wait for the pin (without `--background`).
        #[arg(long, value_name = "DURATION", default_value = "10m")]
        timeout: String,
    },
    /// List a service's pins: `CID STATUS NAME`, one line each.
    Ls {
        /// The service.
        #[arg(long)]
        service: String,
        /// Only pins with this name (exactly).
        #[arg(long)]
        name: Option<String>,
        /// Only these CIDs (comma-separated or repeated).
        #[arg(long, value_delimiter = ',')]
        cid: Vec<String>,
        /// Only these statuses: queued, pinning, pinned, failed (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "pinned")]
        status: Vec<String>,
    },
    /// Remove a service's pins that match (more than one only with `--force`).
    Rm {
        /// The service.
        #[arg(long)]
        service: String,
        /// Only pins with this name.
        #[arg(long)]
        name: Option<String>,
        /// Only these CIDs.
        #[arg(long, value_delimiter = ',')]
        cid: Vec<String>,
        /// Only these statuses.
        #[arg(long, value_delimiter = ',', default_value = "pinned")]
        status: Vec<String>,
        /// Remove every match, however many.
        #[arg(long)]
        force: bool,
    },
    /// The services known to this user (kept, with their keys, mode 0600 in
    /// `$XDG_CONFIG_HOME/kiln/pinning-services.json`).
    #[command(subcommand)]
    Service(PinServiceCommand),
}

#[derive(Debug, Subcommand)]
pub enum PinServiceCommand {
    /// Remember a service: its name, its API endpoint (e.g. `https://host/psa`) and key.
    Add {
        /// The name to call it by.
        name: String,
        /// The endpoint (without `/pins`).
        endpoint: String,
        /// The access token it gave you.
        key: String,
    },
    /// List the services: `NAME ENDPOINT`.
    Ls,
    /// Forget a service.
    Rm {
        /// Its name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Block count, sizes, pins and disk usage.
    Stat {
        /// Sizes in bytes (no units).
        #[arg(long)]
        raw: bool,
    },
    /// Rehash every block and walk every pin; exit non-zero on any missing or corrupt block.
    Verify,
    /// Same as `kiln gc`.
    Gc,
}

#[derive(Debug, Subcommand)]
pub enum BlockCommand {
    /// Print a block's raw bytes.
    Get {
        /// The block's CID.
        cid: String,
    },
    /// Store a block from a file or stdin (`-`); prints its CID.
    Put {
        /// Files to read (`-` = stdin).
        #[arg(default_value = "-")]
        files: Vec<PathBuf>,
        /// Codec of the data: raw, dag-pb or dag-cbor.
        #[arg(long, default_value = "raw")]
        cid_codec: String,
        /// Hash function (only sha2-256).
        #[arg(long, default_value = "sha2-256")]
        mhtype: String,
        /// Pin the block.
        #[arg(long, num_args = 0..=1, default_value = "false", default_missing_value = "true", require_equals = true, value_parser = bool_flag())]
        pin: String,
    },
    /// Print a block's CID and size.
    Stat {
        /// The block's CID.
        cid: String,
    },
    /// Remove blocks (refused for pinned blocks).
    Rm {
        /// CIDs to remove.
        #[arg(required = true)]
        cids: Vec<String>,
        /// Do not fail on blocks that are not present.
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RootfsCommand {
    /// Import a directory or a tar archive as a root file system; prints its CID.
    ///
    /// PATH is a directory, or a tar archive (plain, or gzip-compressed: .tar.gz, .tgz). The
    /// tree is pinned recursively with the pin name `rootfs:NAME`; use its CID as a build
    /// step's `builder = "<CID>"`.
    ///
    /// Kept: regular files, directories and symlinks (targets verbatim, never followed); a
    /// tar hard link becomes a copy of its target. Device nodes, fifos and sockets are left
    /// out (a warning counts them). A tar entry with an absolute path or a `..` component is
    /// refused, and nothing is imported.
    ///
    /// Modes: only "executable or not" is kept. A file with any execute bit is recorded with
    /// the UnixFS mode 0755, any other file with none (written back as 0644); directories
    /// and symlinks record none. Owners, other permission bits and times never change the
    /// CID.
    Import {
        /// The directory or tar archive.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// The name to pin it under, as `rootfs:NAME` [default: PATH's base name, without
        /// .tar, .tar.gz or .tgz].
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DagCommand {
    /// Write the DAG under a CID as a CARv1 file (depth-first, each block once).
    Export {
        /// Root CID (or CID/path).
        path: String,
        /// Write to this file instead of stdout.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Import CARv1/CARv2 files; every block is hash-checked and the roots are pinned.
    Import {
        /// CAR files (`-` = stdin).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Pin the roots named in the CAR headers.
        #[arg(long, num_args = 0..=1, default_value = "true", default_missing_value = "true", require_equals = true, value_parser = bool_flag())]
        pin_roots: String,
    },
}

/// `"true"`/`"false"` as produced by [`bool_flag`].
pub fn truthy(s: &str) -> bool {
    s == "true"
}
