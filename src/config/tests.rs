//! Settings: defaults, files, variables and flags, and the refusals of bad values.
use super::*;

#[test]
fn flags_override_the_file_which_overrides_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mlserve.toml");
    std::fs::write(
        &file,
        "max_batch_rows = 50\nlog_level = \"debug\"\naddr = \"127.0.0.1:9000\"\n",
    )
    .unwrap();
    let flags = SettingsFlags {
        config: Some(file),
        addr: Some("127.0.0.1:9100".parse().unwrap()),
        ..Default::default()
    };
    let settings = flags.resolve().unwrap();
    assert_eq!(settings.addr.port(), 9100);
    assert_eq!(settings.max_batch_rows, 50);
    assert_eq!(settings.log_level, "debug");
    assert_eq!(settings.max_body_bytes, Settings::default().max_body_bytes);
}

#[test]
fn prediction_log_settings_out_of_range_are_refused_by_name() {
    let cases = [
        (
            "prediction_log_retention = \"forever\"\n",
            "invalid setting prediction_log_retention: 'forever' is not a duration",
        ),
        (
            "prediction_log_retention = \"0d\"\n",
            "invalid setting prediction_log_retention",
        ),
        (
            "prediction_log_max_bytes = 0\n",
            "invalid setting prediction_log_max_bytes: must be at least 1",
        ),
        (
            "prediction_log_sample_rate = 0.0\n",
            "invalid setting prediction_log_sample_rate: must be a fraction above 0",
        ),
        (
            "prediction_log_sample_rate = 1.5\n",
            "invalid setting prediction_log_sample_rate",
        ),
        (
            "prediction_log_hash_features = [\"ssn\"]\n",
            "invalid setting prediction_log_hash_key: hashed features need a secret key",
        ),
        (
            "prediction_log_hash_features = [\"ssn\"]\nprediction_log_hash_key = \"short\"\n",
            "invalid setting prediction_log_hash_key",
        ),
        (
            "prediction_log_hash_features = [\"ssn\"]\nprediction_log_exclude_features = [\"ssn\"]\n\
             prediction_log_hash_key = \"0123456789abcdef\"\n",
            "invalid setting prediction_log_hash_features: 'ssn' is also excluded",
        ),
        (
            "prediction_log_models = \"iris\"\n",
            "`prediction_log_models`",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("log.toml");
    for (text, expected) in cases {
        std::fs::write(&file, text).unwrap();
        let flags = SettingsFlags {
            config: Some(file.clone()),
            ..Default::default()
        };
        let error = flags.resolve().unwrap_err().to_string();
        assert!(error.contains(expected), "{text}: {error}");
    }
    std::fs::write(
        &file,
        "prediction_log_retention = \"12h\"\nprediction_log_models = [\"iris\"]\n",
    )
    .unwrap();
    let settings = SettingsFlags {
        config: Some(file),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    assert_eq!(
        settings.retention().max_age,
        std::time::Duration::from_secs(12 * 3600)
    );
    assert_eq!(settings.prediction_log_models, ["iris"]);
}

#[test]
fn unknown_keys_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "max_batch_row = 5\n").unwrap();
    let flags = SettingsFlags {
        config: Some(file.clone()),
        ..Default::default()
    };
    let error = flags.resolve().unwrap_err().to_string();
    assert!(error.contains("unknown field `max_batch_row`"), "{error}");

    std::fs::write(&file, "max_batch_rows = \"many\"\n").unwrap();
    let error = flags.resolve().unwrap_err().to_string();
    assert!(
        error.contains("bad.toml") && error.contains("`max_batch_rows`"),
        "{error}"
    );

    std::fs::write(&file, "request_timeout_secs = -1\n").unwrap();
    let error = flags.resolve().unwrap_err().to_string();
    assert!(error.contains("request_timeout_secs"), "{error}");

    let flags = SettingsFlags {
        log_level: Some("loud=+".into()),
        ..Default::default()
    };
    assert!(
        flags
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("log_level")
    );
}

#[test]
fn grpc_and_tls_settings_out_of_range_are_refused_by_name() {
    let cases = [
        (
            "addr = \"127.0.0.1:9000\"\ngrpc_addr = \"127.0.0.1:9000\"\n",
            "invalid setting grpc_addr: 127.0.0.1:9000 is addr too",
        ),
        (
            "grpc_addr = \"9000\"\n",
            "give HOST:PORT (port 0 for a free one) or off",
        ),
        (
            "grpc_max_message_bytes = 100\n",
            "invalid setting grpc_max_message_bytes: must be from 1024",
        ),
        (
            "tls_cert_file = \"server.crt\"\n",
            "invalid setting tls_key_file: TLS needs both tls_cert_file and tls_key_file",
        ),
        (
            "tls_key_file = \"server.key\"\n",
            "invalid setting tls_cert_file: TLS needs both",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grpc.toml");
    for (text, expected) in cases {
        std::fs::write(&file, text).unwrap();
        let flags = SettingsFlags {
            config: Some(file.clone()),
            ..Default::default()
        };
        let error = flags.resolve().unwrap_err().to_string();
        assert!(error.contains(expected), "{text}: {error}");
    }
    std::fs::write(&file, "grpc_addr = \"off\"\ngrpc_on_http_port = true\n").unwrap();
    let settings = SettingsFlags {
        config: Some(file),
        ..Default::default()
    }
    .resolve()
    .unwrap();
    assert_eq!(settings.grpc_addr, GrpcAddr::Off);
    assert!(settings.grpc_on_http_port);
    assert_eq!(settings.tls(), None);
}
