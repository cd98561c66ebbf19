//! `mlserve serve` (and `mlserve` without a command), `mlserve config` and `mlserve healthcheck`.

use super::{Failure, HealthcheckArgs};
use mlserve::config::SettingsFlags;
use mlserve::serve::ServeError;
use std::process::ExitCode;

/// Serves until SIGINT or SIGTERM. Settings that cannot be used, an address that cannot be
/// bound, a missing repository, keys or database are usage errors (2); a server that fails
/// while running is 1.
pub(super) fn run(flags: SettingsFlags) -> Result<ExitCode, Failure> {
    let settings = flags.resolve().map_err(Failure::usage)?;
    let _guard = mlserve::logging::init(
        &settings.log_level,
        settings.log_format,
        settings.log_dir.as_deref(),
    )
    .map_err(Failure::usage)?;
    if settings.demo_models {
        match mlserve::train::train_demo_models_if_empty(&settings.models) {
            Ok(written) if !written.is_empty() => {
                tracing::info!(models = ?written, dir = %settings.models.display(), "the repository was empty: trained the demo models");
            }
            Ok(_) => {}
            Err(error) => {
                tracing::error!(%error, "cannot train the demo models");
                return Err(Failure::fault(format!(
                    "cannot train the demo models: {error}"
                )));
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| Failure::fault(format!("cannot start the async runtime: {error}")))?;
    match runtime.block_on(mlserve::serve::run(settings)) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(
            error @ (ServeError::Bind { .. }
            | ServeError::GrpcBind { .. }
            | ServeError::NoRepository(_)
            | ServeError::Keys(_)
            | ServeError::NoKeys(_)
            | ServeError::Store(_)
            | ServeError::Tls(_)),
        ) => {
            tracing::error!(%error, "cannot start");
            Err(Failure::usage(error))
        }
        Err(error) => {
            tracing::error!(%error, "server failed");
            Err(Failure::fault(error))
        }
    }
}

/// `mlserve config`: the effective settings as TOML.
pub(super) fn print_config(flags: &SettingsFlags) -> Result<ExitCode, Failure> {
    let settings = flags.resolve().map_err(Failure::usage)?;
    let text = toml::to_string(&settings).map_err(Failure::fault)?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// `mlserve healthcheck`: 0 when the server answers 200, 1 otherwise, saying what it got.
pub(super) fn healthcheck(args: &HealthcheckArgs) -> Result<ExitCode, Failure> {
    // A zero timeout would mean "none" to the socket calls: at least a millisecond.
    let timeout = std::time::Duration::try_from_secs_f64(args.timeout_secs)
        .unwrap_or(std::time::Duration::from_secs(3))
        .max(std::time::Duration::from_millis(1));
    match probe(
        args.addr,
        &args.path,
        args.tls_cert_file.as_deref(),
        timeout,
    ) {
        Ok(200) => Ok(ExitCode::SUCCESS),
        Ok(status) => {
            eprintln!("{}{}: {status}", args.addr, args.path);
            Ok(ExitCode::FAILURE)
        }
        Err(error) => {
            eprintln!("{}{}: {error}", args.addr, args.path);
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Asks a running server for `path` over HTTP/1.0 (over TLS when the server's certificate file
/// is given) and returns the status code: the container health check (`mlserve healthcheck`),
/// which needs neither curl nor a shell. A server listening on every address (`0.0.0.0`, `::`)
/// is asked on loopback.
fn probe(
    addr: std::net::SocketAddr,
    path: &str,
    tls_cert_file: Option<&std::path::Path>,
    timeout: std::time::Duration,
) -> std::io::Result<u16> {
    use std::io::{BufRead, Write};
    let mut target = addr;
    if addr.ip().is_unspecified() {
        target.set_ip(match addr {
            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let mut stream = std::net::TcpStream::connect_timeout(&target, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    let status_line = match tls_cert_file {
        Some(cert_file) => super::probe_tls::status_line(stream, cert_file, &request)?,
        None => {
            stream.write_all(request.as_bytes())?;
            let mut line = String::new();
            std::io::BufReader::new(stream).read_line(&mut line)?;
            line
        }
    };
    status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not an HTTP status line: {:?}", status_line.trim_end()),
            )
        })
}
