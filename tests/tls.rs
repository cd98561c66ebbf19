//! TLS on both listeners (`tls_cert_file`, `tls_key_file`): REST over HTTPS, gRPC over TLS on
//! its port and on the HTTP port (HTTP/2 by ALPN), the certificate read again when its files
//! change, `mlserve healthcheck` over TLS, and files that cannot be used refused at start.

mod common;

use common::clients::run_python_client;
use common::{TestServer, demo_repository, test_settings};
use std::path::Path;
use std::time::Duration;

/// A self-signed certificate for localhost and 127.0.0.1, written as PEM files.
fn write_certificate(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let pem = certified.cert.pem();
    let (cert, key) = (
        dir.join(format!("{name}.crt")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert, &pem).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    (cert, key, pem)
}

/// A PEM certificate's base64 body, whatever its line breaks.
fn body(pem: &str) -> String {
    pem.lines()
        .filter(|line| !line.starts_with("-----"))
        .collect::<String>()
}

#[tokio::test(flavor = "multi_thread")]
async fn both_listeners_speak_tls_and_take_a_renewed_certificate() {
    let repo = demo_repository();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, first) = write_certificate(dir.path(), "server");
    let mut settings = test_settings(repo.path());
    settings.tls_cert_file = Some(cert.clone());
    settings.tls_key_file = Some(key.clone());
    settings.grpc_on_http_port = true;
    let server = TestServer::start(settings).await;
    let http = server.server.addr.to_string();
    let grpc = server.server.grpc_addr.unwrap().to_string();
    let ca = cert.display().to_string();

    let seen = run_python_client(
        "tls_clients.py",
        vec![http.clone(), grpc.clone(), ca.clone(), "clients".into()],
    )
    .await;
    assert_eq!(seen["rest"], "iris", "{seen}");
    assert_eq!(seen["plain_http"], "refused", "{seen}");
    for key in ["grpc", "grpc_on_http_port"] {
        assert_eq!(seen[key]["ready"], true, "{key}: {seen}");
        assert_eq!(
            seen[key]["label"],
            serde_json::json!(["setosa"]),
            "{key}: {seen}"
        );
    }
    for port in ["http", "grpc"] {
        assert_eq!(body(seen["certs"][port].as_str().unwrap()), body(&first));
    }

    // The container health check speaks TLS when given the certificate.
    let checked = std::process::Command::new(env!("CARGO_BIN_EXE_mlserve"))
        .args(["healthcheck", "--addr", &http, "--tls-cert-file", &ca])
        .env_remove("MLSERVE_ADDR")
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");

    // A renewed certificate (written beside, then moved in, as cert-manager and certbot do)
    // applies to new connections on both ports without a restart.
    let (new_cert, new_key, second) = write_certificate(dir.path(), "renewed");
    std::fs::rename(&new_key, &key).unwrap();
    std::fs::rename(&new_cert, &cert).unwrap();
    let renewed = common::eventually(Duration::from_secs(10), async || {
        let seen = run_python_client(
            "tls_clients.py",
            vec![http.clone(), grpc.clone(), ca.clone(), "certs".into()],
        )
        .await;
        ["http", "grpc"]
            .iter()
            .all(|port| body(seen["certs"][port].as_str().unwrap_or("")) == body(&second))
    })
    .await;
    assert!(renewed, "both ports serve the renewed certificate");
}

#[tokio::test(flavor = "multi_thread")]
async fn files_that_cannot_be_used_stop_the_start_naming_them() {
    let repo = demo_repository();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = write_certificate(dir.path(), "server");
    let (_, other_key, _) = write_certificate(dir.path(), "other");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    for (cert_file, key_file, said) in [
        (garbage.clone(), key.clone(), "garbage.pem"),
        (cert.clone(), garbage.clone(), "garbage.pem"),
        (
            cert.clone(),
            other_key.clone(),
            "cannot be used with the certificate",
        ),
        (dir.path().join("missing.crt"), key.clone(), "missing.crt"),
    ] {
        let mut settings = test_settings(repo.path());
        settings.tls_cert_file = Some(cert_file);
        settings.tls_key_file = Some(key_file);
        let error = match mlserve::serve::start(settings).await {
            Ok(_) => panic!("started with unusable TLS files"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains(said), "{error}");
    }
}
