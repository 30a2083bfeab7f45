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

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
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
        () = ctrl_c => {}
        () = term => {}
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
