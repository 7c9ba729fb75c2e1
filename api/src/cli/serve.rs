//! `dealtrail serve`: the HTTP API and dashboard on the embedded store.
//!
//! Start-up: open the store (domain rules in front of every append), write the demo
//! organisation if asked and the store is empty, load the read model (snapshot + catch-up),
//! follow the log, and listen. SIGINT/SIGTERM: stop accepting, finish in-flight requests
//! (appends are acknowledged only once durable, so nothing acknowledged is lost), end
//! subscriptions, save the read model, close the store.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use eventlog::EventStore;
use tokio::sync::watch;

use super::{open_store, CliError, ExitCode};
use crate::http::connections::ConnectionLimits;
use crate::http::{admin_token, ApiConfig, AppState};
use crate::projector::Projector;

/// Options of `serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Write the demo organisation first when the store is empty.
    #[arg(long)]
    pub demo: bool,
    /// Release owned customers with no activity for this many days back to the public pool
    /// (appends `CustomerReleased { reason: "no_follow_up" }` by actor `system`). Off when absent.
    #[arg(long, value_name = "DAYS")]
    pub pool_release_after_days: Option<u32>,
    /// Largest request body in bytes (413 beyond).
    #[arg(long, default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Most events in one append (413 beyond).
    #[arg(long, default_value_t = 1000)]
    pub max_events_per_append: usize,
    /// How many nice steps (Linux, 0-19) below the rest of the server the thread that serves
    /// live subscriptions runs: when the machine is saturated, the live stream lags a little
    /// rather than slowing appends. 0 = the same priority as the rest.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub subscriber_nice: i32,
    /// Most connections open at once, live subscriptions included. When full, the
    /// connection that has waited longest for a request is closed to make room (never one
    /// with a request in progress); if none waits, new connections queue in the kernel until
    /// one ends. Default: 4096, or what the open-file limit leaves after 128 for the store
    /// and the rest, whichever is lower (the soft limit is first raised to the hard one).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: Option<u64>,
    /// Seconds from a request's first byte to the end of its head (request line and
    /// headers); a connection whose head is still incomplete then is closed.
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout: u64,
    /// Seconds a connection may send nothing while none of its requests is in progress (a
    /// new connection before its first request, a kept-alive one between two) before it is
    /// closed; also how long a client may accept no byte of a response. A live subscription
    /// is a request in progress: it is never closed for being quiet.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_alive_timeout: u64,
    /// The admin token (at least 32 visible ASCII characters); it replaces the previous one.
    /// Without it: the one already set, or one generated and printed at the first start.
    /// Prefer the environment variable: a flag shows in the process list.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "DEALTRAIL_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// Which logs to write to stderr, as tracing's filter directives (`warn`,
    /// `info,api::http=debug`).
    #[arg(long, value_name = "FILTER", env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
    /// Seconds allowed for one webhook delivery (connecting, sending, the whole answer);
    /// longer counts as a failed attempt. Fractions allowed.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = positive_seconds)]
    pub webhook_timeout: f64,
    /// Seconds before the first retry of a failed webhook delivery; each further retry
    /// waits twice as long, with jitter, up to --webhook-max-backoff.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0, value_parser = positive_seconds)]
    pub webhook_first_retry: f64,
    /// The longest wait between two attempts at a webhook delivery, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600.0, value_parser = positive_seconds)]
    pub webhook_max_backoff: f64,
    /// A webhook whose every delivery has failed for this many seconds is disabled (it
    /// says so in `GET /v1/webhooks/{id}`). Default: 3 days.
    #[arg(long, value_name = "SECONDS", default_value_t = 259200.0, value_parser = positive_seconds)]
    pub webhook_disable_after: f64,
    /// Publish every event to NATS JetStream at this address (`nats://127.0.0.1:4222`), in
    /// log order, resuming after a restart from a checkpoint in the data directory.
    #[arg(long, value_name = "URL")]
    pub nats: Option<String>,
    /// The JetStream stream the events go to (created if absent).
    #[arg(long, value_name = "NAME", default_value = "DEALTRAIL", value_parser = crate::nats::check_stream_name)]
    pub nats_stream: String,
    /// The first token(s) of each subject: `<prefix>.<category>.<type>`; the stream takes
    /// `<prefix>.>`.
    #[arg(long, value_name = "PREFIX", default_value = "dealtrail", value_parser = crate::nats::check_subject_prefix)]
    pub nats_subject_prefix: String,
    /// Log lines as text or as JSON objects.
    #[arg(long, value_enum, env = "DEALTRAIL_LOG", default_value_t = crate::telemetry::LogFormat::Text)]
    pub log_format: crate::telemetry::LogFormat,
}

/// A duration in seconds: a positive finite number, fractions allowed.
fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(s),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

/// Open files kept for the store, the runtime, logs and files opened by requests, when the
/// connection cap is derived from the open-file limit.
const FILES_BESIDE_CONNECTIONS: u64 = 128;

/// The default connection cap when the open-file limit allows it.
const DEFAULT_MAX_CONNECTIONS: u64 = 4096;

/// Raises the soft limit on open files to the hard limit (Linux) and returns the soft limit
/// then in force, if known. Each connection is a file: the usual soft limit of 1,024 would
/// otherwise cap the server near a thousand connections whatever `--max-connections` says.
fn raise_open_files_limit() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let limit = getrlimit(Resource::Nofile);
        if let (Some(soft), Some(hard)) = (limit.current, limit.maximum) {
            if soft < hard {
                let raised = Rlimit {
                    current: Some(hard),
                    maximum: Some(hard),
                };
                match setrlimit(Resource::Nofile, raised) {
                    Ok(()) => return Some(hard),
                    Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
                }
            }
        }
        limit.current
    }
    #[cfg(not(target_os = "linux"))]
    None
}

/// The connection cap: `asked`, or the default lowered to what `open_files` leaves.
fn max_connections(asked: Option<u64>, open_files: Option<u64>) -> usize {
    let room = open_files.map(|n| n.saturating_sub(FILES_BESIDE_CONNECTIONS).max(16));
    let max = match (asked, room) {
        (Some(asked), Some(room)) if asked > room => {
            tracing::warn!(
                asked,
                open_file_limit = open_files,
                "--max-connections exceeds what the open-file limit leaves: accepting may fail \
                 with too many open files (then waiting connections are closed to make room)"
            );
            asked
        }
        (Some(asked), _) => asked,
        (None, Some(room)) => DEFAULT_MAX_CONNECTIONS.min(room),
        (None, None) => DEFAULT_MAX_CONNECTIONS,
    };
    usize::try_from(max).unwrap_or(usize::MAX)
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

pub async fn run(data: &Path, args: ServeArgs) -> Result<(), CliError> {
    crate::telemetry::init(&args.log_filter, args.log_format)
        .map_err(|e| CliError::new(ExitCode::Usage, e))?;
    let admin =
        admin_token(args.admin_token.as_deref()).map_err(|e| CliError::new(ExitCode::Usage, e))?;
    let open_files = raise_open_files_limit();
    let store = open_store(data).await?;
    let dyn_store: Arc<dyn EventStore> = store.shared();
    if args.demo && store.last_position().await? == 0 {
        let written = super::demo::write_demo(dyn_store.as_ref()).await?;
        eprintln!("demo organisation written: {written} events");
    }
    let projector = Arc::new(Projector::open(data, dyn_store.as_ref()).await?);
    let config = ApiConfig {
        max_body_bytes: args.max_body_bytes,
        max_events_per_append: args.max_events_per_append,
        subscriber_nice: args.subscriber_nice,
        connections: ConnectionLimits {
            max_connections: max_connections(args.max_connections, open_files),
            header_read_timeout: Duration::from_secs(args.header_read_timeout),
            keep_alive_timeout: Duration::from_secs(args.keep_alive_timeout),
        },
        pool_release_after_days: args.pool_release_after_days,
        webhooks: crate::webhooks::DeliveryConfig {
            request_timeout: Duration::from_secs_f64(args.webhook_timeout),
            first_retry: Duration::from_secs_f64(args.webhook_first_retry),
            max_backoff: Duration::from_secs_f64(args.webhook_max_backoff),
            disable_after: Duration::from_secs_f64(args.webhook_disable_after),
        },
        ..ApiConfig::default()
    };
    let opened = match store.documents() {
        // Tokens and consumer checkpoints in the store, the same on every node.
        Some(documents) => {
            AppState::open_shared(dyn_store.clone(), documents, data, config, admin.as_deref())
                .await
        }
        None => AppState::open(dyn_store.clone(), data, config, admin.as_deref()),
    };
    let (state, boot) = opened.map_err(|e| {
        CliError::failure(format!(
            "cannot open the API state ({}): {e}",
            super::store::selected(data).display()
        ))
    })?;
    let state = state.with_projector(projector.clone());
    let webhooks = state.webhooks.clone();

    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| CliError::failure(format!("cannot listen on {}: {e}", args.addr)))?;
    let addr = listener.local_addr()?;
    // Written, not `println!`ed: a server whose stdout was closed (`serve | head -1`) keeps
    // serving instead of panicking on its second line.
    let admin_line = match boot.generated_admin_token {
        Some(token) => format!("admin token (shown once, store it now): {token}"),
        None if admin.is_some() => "admin token: from DEALTRAIL_ADMIN_TOKEN".to_string(),
        None => "admin token: the one already set (printed at the first start, or the last DEALTRAIL_ADMIN_TOKEN)"
            .to_string(),
    };
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "dealtrail listening on http://{addr}  (dashboard: http://{addr}/)\n{admin_line}"
        );
        let _ = out.flush();
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let ownership = state.ownership.clone();
    tokio::spawn(async move {
        if let Err(e) = ownership.catch_up().await {
            tracing::error!(error = %e, "indexing the log for scope decisions failed (each scoped request retries)");
        }
    });
    let follower = tokio::spawn(projector.clone().follow(
        dyn_store.clone(),
        50_000,
        stopped(stop_rx.clone()),
    ));
    let policy = args.pool_release_after_days.map(|days| {
        tokio::spawn(crate::pool_policy::run(
            dyn_store.clone(),
            projector.clone(),
            days,
            stopped(stop_rx.clone()),
        ))
    });

    let nats = args.nats.map(|url| {
        let config = crate::nats::NatsConfig {
            url,
            stream: args.nats_stream,
            subject_prefix: args.nats_subject_prefix,
        };
        let (store, data, stop) = (dyn_store.clone(), data.to_path_buf(), stop_rx.clone());
        tokio::spawn(async move { crate::nats::run(store, &data, config, stop).await })
    });

    crate::http::serve(listener, state, shutdown_signal()).await?;
    webhooks.shutdown().await;
    let _ = stop_tx.send(true);
    let _ = follower.await;
    if let Some(p) = policy {
        let _ = p.await;
    }
    if let Some(n) = nats {
        let _ = n.await;
    }
    eprintln!(
        "dealtrail stopped: read model saved at position {}",
        projector.position()
    );
    Ok(())
}
