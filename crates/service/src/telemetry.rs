//! Logging set-up (JSON lines on stderr, level from `RUST_LOG`, default `info`) and the shutdown
//! signal shared by the binaries.

/// Installs the JSON log subscriber without traces. Safe to call more than once (later calls do
/// nothing). Access lines take the buffered fast path of [`crate::access_log`]; call [`flush`]
/// before the process exits.
pub fn init() {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .with_writer(std::io::stderr)
        .with_filter(not_access())
        .with_filter(env_filter());
    let access = crate::access_log::AccessLayer.with_filter(env_filter());
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(access)
        .try_init();
}

/// Writes the access lines still buffered ([`crate::access_log`]). Every service calls it when
/// it stops.
pub fn flush() {
    crate::access_log::flush();
}

/// Everything but the access events, which [`crate::access_log::AccessLayer`] writes.
fn not_access() -> tracing_subscriber::filter::FilterFn {
    tracing_subscriber::filter::filter_fn(|m| !crate::access_log::is_access(m.target()))
}

fn env_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}

/// Installs the JSON log subscriber and, with `traces`, the OpenTelemetry exporter (see
/// [`crate::trace`]): log lines inside a span then carry `trace.id` and `span.id`. Must run inside
/// a Tokio runtime when `traces` is given; keep the guard until the end of `main` (dropping it
/// flushes the spans not yet exported). Without `traces` this is [`init`].
pub fn init_with_traces(
    traces: Option<&crate::trace::TraceSettings>,
) -> Result<Option<crate::trace::TraceGuard>, String> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::{Layer, filter};
    let Some(settings) = traces else {
        init();
        return Ok(None);
    };
    let (otel, guard) = crate::trace::layer(settings)?;
    // RUST_LOG filters the log lines only: the exporter takes our spans whatever the log level.
    let logs = tracing_subscriber::fmt::layer()
        .json()
        .event_format(TraceIdJson(tracing_subscriber::fmt::format().json()))
        .with_writer(std::io::stderr)
        .with_filter(not_access())
        .with_filter(env_filter());
    let access = crate::access_log::AccessLayer.with_filter(env_filter());
    let spans = otel.with_filter(filter::filter_fn(|m| {
        m.is_span() && m.target().starts_with("strata::trace")
    }));
    let subscriber = tracing_subscriber::registry()
        .with(logs)
        .with(access)
        .with(spans);
    let dispatch = tracing::Dispatch::new(subscriber);
    let _ = crate::trace::DISPATCH.set(dispatch.downgrade());
    tracing::dispatcher::set_global_default(dispatch)
        .map_err(|e| format!("installing the log subscriber: {e}"))?;
    tracing::info!(
        endpoint = %settings.endpoint,
        service = %settings.service_name,
        sampler = %settings.sampler,
        ratio = settings.ratio,
        "exporting traces over OTLP/gRPC"
    );
    Ok(Some(guard))
}

/// The JSON line format with the OpenTelemetry `trace.id` and `span.id` of the current span
/// first, when there is one.
struct TraceIdJson(tracing_subscriber::fmt::format::Format<tracing_subscriber::fmt::format::Json>);

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for TraceIdJson
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use opentelemetry::trace::TraceContextExt;
        let ids = ctx.lookup_current().and_then(|span| {
            let dispatch = crate::trace::DISPATCH.get()?.upgrade()?;
            let cx = tracing_opentelemetry::get_otel_context(&span.id(), &dispatch)?;
            let sc = cx.span().span_context().clone();
            sc.is_valid().then(|| (sc.trace_id(), sc.span_id()))
        });
        let Some((trace_id, span_id)) = ids else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.0.format_event(
            ctx,
            tracing_subscriber::fmt::format::Writer::new(&mut line),
            event,
        )?;
        match line.strip_prefix('{') {
            Some(rest) => write!(
                writer,
                "{{\"trace.id\":\"{trace_id}\",\"span.id\":\"{span_id}\",{rest}"
            ),
            None => writer.write_str(&line),
        }
    }
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
    let status = runtime.block_on(async {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let on_signal = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!("shutdown requested");
            on_signal.cancel();
        });
        service(shutdown).await
    });
    flush();
    status
}
