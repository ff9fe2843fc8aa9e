//! `kiln daemon`: start-up in logged steps, serve, ordered shutdown.

use crate::cli::DaemonArgs;
use anyhow::{Context, Result};
use kiln_api::{AppState, NodeInfo};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub fn run(home: &Path, args: DaemonArgs) -> Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(home, args))?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(home: &Path, args: DaemonArgs) -> Result<()> {
    let (config, config_path) = crate::config::Config::load(args.config.as_deref(), home)?;
    if let Some(p) = &config_path {
        tracing::info!(file = %p.display(), "configuration");
    }
    let api_listen = args
        .api
        .or(config.api.listen)
        .unwrap_or(([127, 0, 0, 1], 5001).into());
    let gateway_listen = args
        .gateway
        .or(config.gateway.listen)
        .unwrap_or(([127, 0, 0, 1], 8080).into());
    let mut limits = config.limits()?;
    let rates = config.rates()?;
    let keep_events = config.keep_events()?;
    let pinning_settings = config.pinning()?;
    // Two listeners share the descriptors, with room for the store and the blocking pool.
    let fds = raise_fd_limit();
    let fit = (fds.saturating_sub(512) / 2).max(16) as usize;
    if limits.max_connections > fit {
        tracing::warn!(
            configured = limits.max_connections,
            used = fit,
            "connection cap lowered to fit the open-file limit ({fds})"
        );
        limits.max_connections = fit;
    }
    tracing::info!(repo = %home.display(), "opening repository");
    let store = crate::repo::open(home)?;
    // One daemon per repository: a second one would take over the `api` file and run the
    // same schedules.
    let mut lock = DaemonLock::acquire(home)?;
    let key = crate::repo::identity(home)?;
    // A command killed while changing users would leave tokens checked the slow way.
    store
        .settle_access()
        .context("settling the store's access generation")?;
    let open_loopback = args.open_loopback || config.api.open_loopback.unwrap_or(false);
    let allow_plaintext = args.allow_plaintext || config.api.allow_plaintext.unwrap_or(false);
    let tls_of = |section: &crate::config::Listener, name: &str| -> Result<Option<kiln_api::Tls>> {
        let (cert, key) = match (&args.tls_cert, &args.tls_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => match (&section.tls_cert, &section.tls_key) {
                (Some(c), Some(k)) => (c.clone(), k.clone()),
                (None, None) => return Ok(None),
                _ => anyhow::bail!("[{name}] needs both tls_cert and tls_key"),
            },
        };
        kiln_api::Tls::from_pem_files(&cert, &key)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("[{name}] TLS: {e}"))
    };
    let api_tls = tls_of(&config.api, "api")?;
    let gateway_tls = tls_of(&config.gateway, "gateway")?;
    for (what, addr, tls) in [
        ("API", api_listen, api_tls.is_some()),
        ("gateway", gateway_listen, gateway_tls.is_some()),
    ] {
        if addr.ip().is_loopback() || tls {
            continue;
        }
        if !allow_plaintext {
            anyhow::bail!(
                "refusing to listen on {addr} ({what}) without TLS: give --tls-cert and --tls-key, keep it on loopback behind a reverse proxy that terminates TLS, or pass --allow-plaintext"
            );
        }
        tracing::warn!(
            %addr,
            "{what} listens without TLS on a non-loopback address (--allow-plaintext): tokens and content cross the network in the clear"
        );
    }
    let api = tokio::net::TcpListener::bind(api_listen)
        .await
        .with_context(|| format!("cannot listen on {api_listen} (API)"))?;
    let api_addr = api.local_addr()?;
    let gateway = tokio::net::TcpListener::bind(gateway_listen)
        .await
        .with_context(|| format!("cannot listen on {gateway_listen} (gateway)"))?;
    let gateway_addr = gateway.local_addr()?;
    let node = NodeInfo {
        peer_id: key.peer_id(),
        did: key.did(),
        public_key: kiln_id::libp2p_public_key(&key.public_key()),
        agent_version: format!("kiln/{}", env!("CARGO_PKG_VERSION")),
        addresses: vec![multiaddr(api_addr)],
    };
    tracing::info!(peer_id = %node.peer_id, did = %node.did, "node identity");
    let metrics = kiln_api::metrics::install()
        .map_err(|e| tracing::warn!("metrics disabled: {e}"))
        .ok();
    if let Some(h) = &metrics {
        kiln_api::metrics::spawn_upkeep(h.clone());
    }
    spawn_memory_return();
    // Builds run here; the sandbox helper is this executable, started again.
    let exe = std::env::current_exe().context("cannot find the kiln executable")?;
    let auth = Arc::new(
        kiln_node::auth::Auth::new(crate::repo::identity(home)?).with_rate(rates.per_identity),
    );
    let builds =
        kiln_node::builds::BuildService::open(store.clone(), key, home.join("builds"), exe)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("opening the build service")?;
    // Registered recipes are checked, and built, on their schedules from now on.
    builds.start_scheduler();
    // Old events go at start-up (and after each GC run).
    if let Err(e) = kiln_node::journal::prune(&store, keep_events) {
        tracing::warn!("pruning the event journal failed: {e}");
    }
    // Pin requests (the Pinning Service API): what is waiting is fetched and pinned from now
    // on; requests name the gateway as the node's delegate.
    let pinning = kiln_node::pinning::PinningService::new(store.clone(), pinning_settings);
    pinning.set_delegates(vec![format!(
        "{}/p2p/{}",
        multiaddr(gateway_addr),
        node.peer_id
    )]);
    let pinning_worker = pinning
        .start()
        .context("starting the pinning service's worker")?;
    let state = AppState {
        store,
        pinning: pinning.clone(),
        node: Arc::new(node),
        metrics,
        keep_events,
        builds: builds.clone(),
        auth,
        access: kiln_api::Access {
            open_loopback,
            per_ip: rates
                .per_ip
                .map(|r| Arc::new(kiln_node::rate::Limiter::new(r))),
            limit_loopback: rates.limit_loopback,
        },
    };
    if open_loopback {
        tracing::warn!(
            "--open-loopback: loopback clients act as the local administrator without a token (so does anything else running on this machine)"
        );
    } else {
        tracing::info!(
            "every TCP client needs a token, but for reading content through the gateway"
        );
    }
    let scheme = |tls: &Option<kiln_api::Tls>| if tls.is_some() { "https" } else { "http" };
    let (api_scheme, gateway_scheme) = (scheme(&api_tls), scheme(&gateway_tls));
    // The web UI's sign-in link, for the person who started the node in a terminal (never
    // where standard output may be a log: `kiln ui login` prints one there).
    let ui_link = if std::io::stdout().is_terminal() && !open_loopback {
        let link = state
            .auth
            .sessions()
            .link(&kiln_node::Caller::local(kiln_node::Via::Cli), None)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Some(format!(
            "{api_scheme}://{api_addr}/ui/login?code={}",
            link.code
        ))
    } else {
        None
    };
    let socket = ApiSocket::bind(home)?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait_stop = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let listener = |l: tokio::net::TcpListener, tls: Option<kiln_api::Tls>| match tls {
        Some(t) => kiln_api::Listener::Tls(l, t),
        None => kiln_api::Listener::Tcp(l),
    };
    let api_task = tokio::spawn(kiln_api::serve(
        listener(api, api_tls),
        kiln_api::api_router(state.clone()),
        limits,
        wait_stop(stop_rx.clone()),
    ));
    let socket_task = socket
        .as_ref()
        .map(ApiSocket::listener)
        .transpose()?
        .map(|l| {
            tokio::spawn(kiln_api::serve(
                l,
                kiln_api::api_router(state.clone()),
                limits,
                wait_stop(stop_rx.clone()),
            ))
        });
    let gateway_task = tokio::spawn(kiln_api::serve(
        listener(gateway, gateway_tls),
        kiln_api::gateway_router(state),
        limits,
        wait_stop(stop_rx),
    ));

    let shutdown = shutdown_signal()?;
    // Before "ready": from then on, commands run on this repository use this daemon.
    let api_file = ApiFile::write(home, api_scheme, api_addr)?;
    lock.note(&format!("API {}", api_file.content.trim_end()));
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "API listening on {api_scheme}://{api_addr}")?;
        match &ui_link {
            Some(link) => writeln!(
                out,
                "Web UI on {api_scheme}://{api_addr}/ — sign in with {link} (works once, for ten minutes; kiln ui login prints another)"
            )?,
            None => writeln!(out, "Web UI on {api_scheme}://{api_addr}/")?,
        }
        writeln!(
            out,
            "Gateway listening on {gateway_scheme}://{gateway_addr}"
        )?;
        writeln!(out, "Daemon is ready")?;
        out.flush()?;
    }

    shutdown.await;
    tracing::info!("shutting down: refusing new connections, finishing requests");
    drop(api_file);
    // Event streams and live pages end; builds still running are marked interrupted.
    tokio::task::spawn_blocking(move || builds.close())
        .await
        .context("closing the build service")?;
    pinning.close();
    let _ = tokio::task::spawn_blocking(move || pinning_worker.join()).await;
    let _ = stop_tx.send(true);
    api_task
        .await
        .context("API server task")?
        .context("API server")?;
    gateway_task
        .await
        .context("gateway task")?
        .context("gateway")?;
    if let Some(t) = socket_task {
        t.await.context("socket task")?.context("API socket")?;
    }
    drop(socket);
    tracing::info!("stopped");
    drop(lock);
    Ok(())
}

/// `$KILN_HOME/api.sock`: the API on a Unix socket (mode 0600), where the repository
/// owner's commands act as the local administrator without a token (the daemon checks each
/// peer's credentials). Removed at shutdown; one left by a daemon that was killed is
/// replaced (the daemon lock says no other daemon runs here).
struct ApiSocket {
    path: std::path::PathBuf,
    listener: std::os::unix::net::UnixListener,
}

impl ApiSocket {
    /// Bind the socket, or (a path too long for a socket address) say why not and go on
    /// without it: the command line then needs a token.
    fn bind(home: &Path) -> Result<Option<ApiSocket>> {
        use std::os::unix::fs::PermissionsExt;
        let path = home.join(crate::remote::SOCKET_FILE);
        let _ = std::fs::remove_file(&path);
        // The socket is created private: no window in which another user could connect.
        // SAFETY: umask only swaps the process's file-mode mask.
        let old = unsafe { libc::umask(0o177) };
        let bound = std::os::unix::net::UnixListener::bind(&path);
        unsafe { libc::umask(old) };
        let listener = match bound {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(path = %path.display(), "no API socket ({e}): local commands will need a token");
                return Ok(None);
            }
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot make {} private", path.display()))?;
        listener.set_nonblocking(true)?;
        tracing::info!(path = %path.display(), "API socket (the local administrator's)");
        Ok(Some(ApiSocket { path, listener }))
    }

    fn listener(&self) -> Result<tokio::net::UnixListener> {
        let l = self.listener.try_clone().context("API socket")?;
        Ok(tokio::net::UnixListener::from_std(l)?)
    }
}

impl Drop for ApiSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `$KILN_HOME/daemon.lock`: an exclusive `flock` held while a daemon runs on the repository
/// (the kernel releases it when the process dies, even by `kill -9`), and a line saying who
/// holds it, for the error a second daemon gives.
struct DaemonLock {
    file: std::fs::File,
}

impl DaemonLock {
    fn acquire(home: &Path) -> Result<DaemonLock> {
        let path = home.join("daemon.lock");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                anyhow::bail!(
                    "a kiln daemon is already running on {} ({}); stop it first, or give this \
                     one another repository (--home)",
                    home.display(),
                    if holder.is_empty() {
                        "starting"
                    } else {
                        holder
                    }
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        let mut lock = DaemonLock { file };
        lock.note("starting");
        Ok(lock)
    }

    /// Say who holds the lock: this process, and what it is doing or where it listens.
    fn note(&mut self, what: &str) {
        use std::io::Seek;
        let line = format!("pid {}, {what}\n", std::process::id());
        let _ = self.file.set_len(0);
        let _ = self.file.rewind();
        let _ = self.file.write_all(line.as_bytes());
    }
}

/// Every few seconds, hand memory freed by finished requests back to the system. glibc's
/// allocator keeps freed memory in its arenas; after a burst (a large import, a big
/// listing) the daemon would otherwise stay at its peak.
fn spawn_memory_return() {
    #[cfg(target_env = "gnu")]
    tokio::spawn(async {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // SAFETY: malloc_trim only walks and trims the allocator's own free lists.
            let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        }
    });
}

/// Watch SIGINT and SIGTERM from now on (before "ready" is printed, so a signal sent right
/// after it is never lost to the default action); the future completes on either.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("watching SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("watching SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    })
}

/// `/ip4/127.0.0.1/tcp/5001/http`: how Kubo clients expect addresses.
fn multiaddr(a: std::net::SocketAddr) -> String {
    let ip = match a.ip() {
        std::net::IpAddr::V4(v4) => format!("/ip4/{v4}"),
        std::net::IpAddr::V6(v6) => format!("/ip6/{v6}"),
    };
    format!("{ip}/tcp/{}/http", a.port())
}

/// `$KILN_HOME/api`: the URL of this daemon's API, so commands run on the repository talk
/// to the daemon. Written atomically once the listeners are up; removed at shutdown (a
/// daemon killed outright leaves it behind, and commands then find nobody answering there
/// and open the repository directly).
struct ApiFile {
    path: std::path::PathBuf,
    content: String,
}

impl ApiFile {
    fn write(home: &Path, scheme: &str, addr: std::net::SocketAddr) -> Result<ApiFile> {
        // A wildcard listener is reached through loopback.
        let ip = match addr.ip() {
            std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        let content = format!(
            "{scheme}://{}\n",
            std::net::SocketAddr::new(ip, addr.port())
        );
        let path = home.join(crate::remote::API_FILE);
        let mut tmp = tempfile::NamedTempFile::new_in(home)
            .with_context(|| format!("cannot write in {}", home.display()))?;
        tmp.write_all(content.as_bytes())?;
        tmp.persist(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(ApiFile { path, content })
    }
}

impl Drop for ApiFile {
    fn drop(&mut self) {
        // Only if it is still ours: another daemon may have started on the repository since.
        if std::fs::read_to_string(&self.path).is_ok_and(|c| c == self.content) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Raise the soft open-file limit to the hard one (every connection is a descriptor) and
/// return the soft limit now in force.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                tracing::debug!("could not raise the open-file limit");
            }
        }
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur
        } else {
            1024
        }
    }
}
