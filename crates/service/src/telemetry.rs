//! Logging set-up (JSON lines on stderr, level from `RUST_LOG`, default `info`) and the shutdown
//! signal shared by the binaries.

/// Installs the JSON log subscriber. Safe to call more than once (later calls do nothing).
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A future that resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled: a signal that arrives after the call always
/// reaches it, never the default action (which would kill the process instead of draining it).
/// Call it before announcing readiness.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        async fn recv(signal: Option<Signal>) {
            match signal {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        }
        let term = signal(SignalKind::terminate()).ok();
        let interrupt = signal(SignalKind::interrupt()).ok();
        async move {
            tokio::select! {
                () = recv(term) => {}
                () = recv(interrupt) => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `--config FILE` or `--config=FILE` among the process's arguments, else the environment
/// variable `env` (the services' shared command-line convention).
pub fn config_path(env: &str) -> Option<std::path::PathBuf> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--config" {
            return args.next().map(std::path::PathBuf::from);
        }
        if let Some(v) = arg.strip_prefix("--config=") {
            return Some(std::path::PathBuf::from(v));
        }
    }
    std::env::var_os(env).map(std::path::PathBuf::from)
}

/// Installs logging, builds the runtime and runs `service` with a shutdown token that SIGINT or
/// SIGTERM cancels; returns its exit status (1 if the runtime cannot start). `name` prefixes
/// the messages.
pub fn run_service<F, Fut>(name: &str, service: F) -> std::process::ExitCode
where
    F: FnOnce(tokio_util::sync::CancellationToken) -> Fut,
    Fut: std::future::Future<Output = std::process::ExitCode>,
{
    init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{name}: starting the runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested");
            on_signal.cancel();
        });
        service(shutdown).await
    })
}
