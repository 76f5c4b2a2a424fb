//! HTTPS with `use_ssl`, and refusing to start with a certificate that cannot be loaded.

use std::path::Path;
use std::process::Command;

use crate::helpers::{spawn_app_with, test_config, write_file};

/// Makes a self-signed certificate for 127.0.0.1 with the openssl command.
pub fn self_signed(dir: &Path) -> (String, String) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command is needed for the TLS tests");
    assert!(status.status.success(), "openssl failed: {status:?}");
    (cert.display().to_string(), key.display().to_string())
}

#[tokio::test]
async fn serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let app = spawn_app_with(&format!(
        "[DEFAULT]\nuse_ssl = true\nssl_cert_path = {cert}\nssl_key_path = {key}\n"
    ))
    .await;
    assert!(app.address.starts_with("https://"));
    // The certificate served is exactly the configured one.
    let der = Command::new("openssl")
        .args(["x509", "-outform", "der", "-in", &cert])
        .output()
        .unwrap();
    assert!(der.status.success());
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .build()
        .unwrap();
    let response = client
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let info = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .unwrap();
    assert_eq!(info.peer_certificate(), Some(der.stdout.as_slice()));
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["versions"][0]["links"][0]["href"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    // Plain HTTP on the TLS port does not get an answer.
    let plain = app.address.replace("https://", "http://");
    assert!(reqwest::get(format!("{plain}/")).await.is_err());
    app.stop().await;
}

#[tokio::test]
async fn unreadable_or_invalid_certificates_stop_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let garbage = write_file(dir.path(), "garbage.pem", "not a certificate\n");
    let cases = [
        (format!("{}/missing.pem", dir.path().display()), key.clone()),
        (garbage.display().to_string(), key.clone()),
        (cert.clone(), garbage.display().to_string()),
    ];
    for (cert, key) in cases {
        let config = test_config(
            dir.path(),
            &format!("[DEFAULT]\nuse_ssl = true\nssl_cert_path = {cert}\nssl_key_path = {key}\n"),
        );
        let err = ironic_inspector::app::tls_config(&config)
            .await
            .expect_err("a bad certificate must stop start-up");
        let text = format!("{err:#}");
        assert!(text.contains("ssl_cert_path"), "{text}");
    }
}
