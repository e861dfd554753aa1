//! `imprint push`, `discover` and `pull` against a real `docker-registry` on a free
//! loopback port (skipped, with a message, where it is not installed).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use imprint_test_support::{
    TestImage, TestRegistry, free_loopback_addr, push_image, push_test_image, skip,
};

// Only part of the helpers is used here.
#[allow(dead_code)]
mod common;
use common::{assert_exit, imprint, text};

/// Pushes the test image as `repo:1.0` through `client`, which holds the
/// credentials the registry asks for, and returns its manifest digest.
fn push_test_image_through(
    rt: &tokio::runtime::Runtime,
    client: &imprint_oci::Registry,
    addr: &str,
    repo: &str,
) -> imprint_schema::Digest {
    let image = TestImage::new(repo, "amd64");
    let reference = imprint_oci::parse_reference(&format!("{addr}/{repo}:1.0")).unwrap();
    rt.block_on(async {
        client.push_blob(&reference, &image.config).await.unwrap();
        client.push_blob(&reference, &image.layer).await.unwrap();
        client
            .push_manifest(&reference, &image.manifest, TestImage::MANIFEST_MEDIA_TYPE)
            .await
            .unwrap()
    })
}

fn write_profile(dir: &Path, digest: &imprint_schema::Digest) -> std::path::PathBuf {
    let mut p = imprint_schema::Profile::new(digest.clone());
    p.learning.completeness = imprint_schema::Completeness::Complete;
    p.learning.end = Some("2026-11-26T12:00:00Z".parse().unwrap());
    p.syscalls = vec!["read".into(), "execve".into()];
    p.execs.push(imprint_schema::Exec {
        path: "/bin/busybox".into(),
        args: None,
    });
    let path = dir.join("profile.yaml");
    std::fs::write(&path, imprint_schema::to_yaml(&p)).unwrap();
    path
}

#[test]
fn push_discover_pull_round_trip() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let image_digest = push_test_image(&reg.addr, "shop/web");
    let dir = tempfile::tempdir().unwrap();
    let profile = write_profile(dir.path(), &image_digest);
    let image = format!("{}/shop/web:1.0", reg.addr);

    let out = imprint(&[&"push", &profile, &"--image", &image, &"--output", &"json"]);
    assert_exit(&out, 0);
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let digest = pushed["digest"].as_str().unwrap().to_string();
    assert_eq!(pushed["subject"]["digest"], image_digest.as_str());
    assert_eq!(pushed["repository"], format!("{}/shop/web", reg.addr));

    // Pushing the same profile again is idempotent.
    let out = imprint(&[&"push", &profile, &"--image", &image]);
    assert_exit(&out, 0);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{}/shop/web@{digest}", reg.addr)
    );
    let out = imprint(&[
        &"discover",
        &format!("{}/shop/web@{image_digest}", reg.addr),
        &"--output",
        &"json",
    ]);
    assert_exit(&out, 0);
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["digest"], digest.as_str());
    assert_eq!(found[0]["created"], "2026-11-26T12:00:00Z");

    // Pull by digest gives back exactly the canonical bytes.
    let pulled = dir.path().join("pulled.json");
    let out = imprint(&[
        &"pull",
        &format!("{}/shop/web@{digest}", reg.addr),
        &"-o",
        &pulled,
    ]);
    assert_exit(&out, 0);
    let original = imprint_schema::parse_profile(&std::fs::read(&profile).unwrap()).unwrap();
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        imprint_schema::to_canonical_json(&original)
    );
    let as_yaml = dir.path().join("pulled.yaml");
    assert_exit(
        &imprint(&[
            &"pull",
            &format!("{}/shop/web@{digest}", reg.addr),
            &"-o",
            &as_yaml,
        ]),
        0,
    );
    assert_exit(&imprint(&[&"diff", &profile, &as_yaml]), 0);

    // A push to another repository with a tag.
    let out = imprint(&[
        &"push",
        &profile,
        &"--image",
        &image,
        &"--to",
        &format!("{}/profiles/web:v1", reg.addr),
    ]);
    assert_exit(&out, 0);
    let out = imprint(&[
        &"pull",
        &format!("{}/profiles/web:v1", reg.addr),
        &"-o",
        &dir.path().join("tagged.json"),
    ]);
    assert_exit(&out, 0);

    // Without a tag, nothing is tagged (no `latest` moved): the artifact is
    // found by digest and by its subject.
    let untagged = format!("{}/profiles/untagged", reg.addr);
    let out = imprint(&[
        &"push",
        &profile,
        &"--image",
        &image,
        &"--to",
        &untagged,
        &"--output",
        &"json",
    ]);
    assert_exit(&out, 0);
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(pushed["tag"].is_null(), "{pushed}");
    let out = imprint(&[
        &"pull",
        &format!("{untagged}:latest"),
        &"-o",
        &dir.path().join("latest.json"),
    ]);
    assert_ne!(out.status.code(), Some(0), "a latest tag was written");
    let out = imprint(&[
        &"pull",
        &pushed["reference"].as_str().unwrap(),
        &"-o",
        &dir.path().join("by-digest.json"),
    ]);
    assert_exit(&out, 0);
    let out = imprint(&[
        &"discover",
        &format!("{}/shop/web@{image_digest}", reg.addr),
        &"--to",
        &untagged,
        &"--output",
        &"json",
    ]);
    assert_exit(&out, 0);
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found[0]["digest"], pushed["digest"]);
}

#[test]
fn push_refuses_a_profile_of_another_image() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    push_test_image(&reg.addr, "app");
    let dir = tempfile::tempdir().unwrap();
    let profile = write_profile(
        dir.path(),
        &format!("sha256:{}", "e".repeat(64)).parse().unwrap(),
    );
    let out = imprint(&[
        &"push",
        &profile,
        &"--image",
        &format!("{}/app:1.0", reg.addr),
    ]);
    assert_exit(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("describes image sha256:eeee"));

    // Pulling the image itself (not a profile artifact) writes nothing.
    let out_file = dir.path().join("x.json");
    let out = imprint(&[&"pull", &format!("{}/app:1.0", reg.addr), &"-o", &out_file]);
    assert_exit(&out, 1);
    assert!(!out_file.exists());
}

#[test]
fn an_unreachable_registry_exits_2() {
    let addr = free_loopback_addr();
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("x.json");
    let out = imprint(&[
        &"pull",
        &format!("{addr}/a@sha256:{}", "1".repeat(64)),
        &"-o",
        &out_file,
        &"--timeout",
        &"2",
    ]);
    assert_exit(&out, 2);
    assert!(!out_file.exists());
}

fn imprint_with(
    args: &[&dyn AsRef<std::ffi::OsStr>],
    stdin: &str,
    env: &[(&str, &Path)],
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_imprint"))
        .args(args.iter().map(|a| a.as_ref()))
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("DOCKER_CONFIG")
        .env("HOME", "/nonexistent")
        .envs(env.iter().map(|(k, v)| (k, v.as_os_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn credentials_from_flags_and_docker_config() {
    let dir = tempfile::tempdir().unwrap();
    let htpasswd = dir.path().join("htpasswd");
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).unwrap();
    let Some(reg) = TestRegistry::start_with_config(&format!(
        "auth:\n  htpasswd:\n    realm: imprint-test\n    path: {}\n",
        htpasswd.display()
    )) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = {
        let r = imprint_oci::parse_reference(&format!("{}/x:y", reg.addr)).unwrap();
        imprint_oci::Registry::new(&Default::default(), &[&r])
            .unwrap()
            .with_auth(oci_client::secrets::RegistryAuth::Basic(
                "alice".into(),
                "s3cret".into(),
            ))
    };
    let image_digest = push_test_image_through(&rt, &client, &reg.addr, "private/app");
    let profile = write_profile(dir.path(), &image_digest);
    let image = format!("{}/private/app:1.0", reg.addr);

    // Anonymous: refused by the registry, an I/O-class failure.
    let out = imprint_with(&[&"push", &profile, &"--image", &image], "", &[]);
    assert_exit(&out, 2);
    // A wrong password.
    let out = imprint_with(
        &[
            &"push",
            &profile,
            &"--image",
            &image,
            &"--username",
            &"alice",
            &"--password-stdin",
        ],
        "wrong\n",
        &[],
    );
    assert_exit(&out, 2);
    // The right one, from stdin.
    let out = imprint_with(
        &[
            &"push",
            &profile,
            &"--image",
            &image,
            &"--username",
            &"alice",
            &"--password-stdin",
        ],
        "s3cret\n",
        &[],
    );
    assert_exit(&out, 0);
    let artifact = String::from_utf8_lossy(&out.stdout).trim().to_string();

    // From a docker config file (DOCKER_CONFIG), and from REGISTRY_AUTH_FILE.
    let docker = dir.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    let auth = format!(
        r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
        reg.addr,
        "YWxpY2U6czNjcmV0" // alice:s3cret
    );
    std::fs::write(docker.join("config.json"), &auth).unwrap();
    let out_file = dir.path().join("pulled.json");
    let out = imprint_with(
        &[&"pull", &artifact, &"-o", &out_file],
        "",
        &[("DOCKER_CONFIG", &docker)],
    );
    assert_exit(&out, 0);
    let auth_file = dir.path().join("auth.json");
    std::fs::write(&auth_file, &auth).unwrap();
    let out = imprint_with(
        &[
            &"discover",
            &format!("{}/private/app@{image_digest}", reg.addr),
        ],
        "",
        &[("REGISTRY_AUTH_FILE", &auth_file)],
    );
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains(artifact.rsplit('@').next().unwrap()));

    // A broken config file is named.
    std::fs::write(&auth_file, "{\"auths\": {\"x\": {\"auth\": 5}}}").unwrap();
    let out = imprint_with(
        &[&"pull", &artifact, &"-o", &out_file],
        "",
        &[("REGISTRY_AUTH_FILE", &auth_file)],
    );
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("auth.json: not a docker config file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = (
        dir.path().join("ca.pem"),
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
    );
    // A private CA and a server certificate for 127.0.0.1 signed by it.
    let script = r#"set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=imprint-test-ca -addext basicConstraints=critical,CA:TRUE -keyout ca.key -out ca.pem
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
  -keyout key.pem -out leaf.csr
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > leaf.ext
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
  -extfile leaf.ext -out cert.pem
"#;
    let made = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir.path())
        .output();
    if !made.as_ref().is_ok_and(|o| o.status.success()) {
        skip(format!(
            "openssl could not make test certificates: {made:?}"
        ));
        return;
    }
    let Some(reg) = TestRegistry::start_tls(&cert, &key) else {
        return;
    };
    let image = format!("{}/tls/app@sha256:{}", reg.addr, "0".repeat(64));
    // Trusting the CA: TLS works, and the image simply has no profiles.
    let out = imprint(&[&"discover", &image, &"--ca-file", &ca, &"--output", &"json"]);
    assert_exit(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    // Plain HTTP to a TLS port fails, and so does TLS without trusting the CA.
    assert_exit(&imprint(&[&"discover", &image, &"--timeout", &"3"]), 2);
    // The server's own certificate is not a CA: TLS verification fails.
    let out = imprint(&[&"discover", &image, &"--ca-file", &cert, &"--timeout", &"3"]);
    assert_exit(&out, 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = imprint(&[
        &"discover",
        &image,
        &"--ca-file",
        &dir.path().join("absent.pem"),
    ]);
    assert_exit(&out, 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read --ca-file"));
}

#[test]
fn a_multi_platform_image_binds_to_its_platform_manifest() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let r = imprint_oci::parse_reference(&format!("{}/multi:x", reg.addr)).unwrap();
    let client = imprint_oci::Registry::new(&Default::default(), &[&r]).unwrap();
    // Two platform manifests and an index over them, in one repository.
    let amd64 = push_image(&reg.addr, "multi", "amd", "amd64");
    let arm64 = push_image(&reg.addr, "multi", "arm", "arm64");
    let resolve = |digest: &imprint_schema::Digest| {
        let r = imprint_oci::parse_reference(&format!("{}/multi@{digest}", reg.addr)).unwrap();
        rt.block_on(client.resolve(&r)).unwrap()
    };
    let (amd_desc, arm_desc) = (resolve(&amd64), resolve(&arm64));
    let entry = |d: &imprint_oci::layout::Descriptor, arch: &str| {
        serde_json::json!({"mediaType": d.media_type, "digest": d.digest, "size": d.size,
                           "platform": {"os": "linux", "architecture": arch}})
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": imprint_oci::layout::INDEX_MEDIA_TYPE,
        "manifests": [entry(&amd_desc, "amd64"), entry(&arm_desc, "arm64")],
    });
    let index_ref = imprint_oci::parse_reference(&format!("{}/multi:2.0", reg.addr)).unwrap();
    let index_digest = rt
        .block_on(client.push_manifest(
            &index_ref,
            &serde_json::to_vec(&index).unwrap(),
            imprint_oci::layout::INDEX_MEDIA_TYPE,
        ))
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let profile = write_profile(dir.path(), &arm64);
    let image = format!("{}/multi:2.0", reg.addr);
    // No platform: the index is named, with what it holds.
    let out = imprint(&[&"push", &profile, &"--image", &image]);
    assert_exit(&out, 1);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("multi-platform index (linux/amd64, linux/arm64)"),
        "{err}"
    );
    // The wrong platform: the digests differ.
    let out = imprint(&[
        &"push",
        &profile,
        &"--image",
        &image,
        &"--platform",
        &"linux/amd64",
    ]);
    assert_exit(&out, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("describes image"));
    // The right one binds to the arm64 manifest.
    let out = imprint(&[
        &"push",
        &profile,
        &"--image",
        &image,
        &"--platform",
        &"linux/arm64",
        &"--output",
        &"json",
    ]);
    assert_exit(&out, 0);
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pushed["subject"]["digest"], arm64.as_str());

    // Learned from a container started by the index (its runtime reported the
    // index digest): bound to the platform's manifest, which is what it ran.
    let learned = dir.path().join("learned-from-index.yaml");
    let mut by_index = imprint_schema::parse_profile(&std::fs::read(&profile).unwrap()).unwrap();
    by_index.image.digest = index_digest.clone();
    std::fs::write(&learned, imprint_schema::to_yaml(&by_index)).unwrap();
    let out = imprint(&[&"push", &learned, &"--image", &image]);
    assert_exit(&out, 1);
    let out = imprint(&[
        &"push",
        &learned,
        &"--image",
        &format!("{}/multi@{index_digest}", reg.addr),
        &"--platform",
        &"linux/arm64",
        &"--output",
        &"json",
    ]);
    assert_exit(&out, 0);
    assert!(
        text(&out.stderr).contains(
            "is a multi-platform index; the profile is bound to its linux/arm64 manifest"
        ),
        "{}",
        text(&out.stderr)
    );
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pushed["subject"]["digest"], arm64.as_str());
    let pulled = dir.path().join("pulled.json");
    let out = imprint(&[
        &"pull",
        &pushed["reference"].as_str().unwrap(),
        &"-o",
        &pulled,
    ]);
    assert_exit(&out, 0);
    let pulled = imprint_schema::parse_profile(&std::fs::read(&pulled).unwrap()).unwrap();
    assert_eq!(pulled.image.digest, arm64);
    assert_eq!(pulled.image.platform.as_deref(), Some("linux/arm64"));
    // A digest that is neither the manifest nor the index is still refused.
    by_index.image.digest = amd64.clone();
    std::fs::write(&learned, imprint_schema::to_yaml(&by_index)).unwrap();
    let out = imprint(&[
        &"push",
        &learned,
        &"--image",
        &image,
        &"--platform",
        &"linux/arm64",
    ]);
    assert_exit(&out, 1);
    assert!(text(&out.stderr).contains("describes image"));
}

/// A token server as Docker Hub and Harbor run one: `GET /token?scope=…&service=…`
/// with Basic credentials answers a JWT (ES256, certificate chain in `x5c`) that
/// the registry checks against its `rootcertbundle`.
mod token_server {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::path::Path;

    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use p256::ecdsa::{Signature, SigningKey, signature::Signer};
    use p256::pkcs8::EncodePrivateKey;

    pub const SERVICE: &str = "imprint-test-registry";
    pub const ISSUER: &str = "imprint-test-issuer";

    pub struct TokenServer {
        pub realm: String,
        pub certificate: std::path::PathBuf,
    }

    /// Starts one that grants what `scope` asks to `user:password`, and refuses
    /// anyone else. `None` (a skip) where openssl (for the certificate) is absent.
    pub fn start(dir: &Path, user: &'static str, password: &'static str) -> Option<TokenServer> {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let key_file = dir.join("token-key.pem");
        std::fs::write(
            &key_file,
            key.to_pkcs8_pem(p256::pkcs8::LineEnding::LF)
                .unwrap()
                .as_bytes(),
        )
        .unwrap();
        let certificate = dir.join("token-cert.pem");
        let der = dir.join("token-cert.der");
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-new",
                "-subj",
                "/CN=imprint-test-token",
                "-days",
                "2",
            ])
            .arg("-key")
            .arg(&key_file)
            .arg("-out")
            .arg(&certificate)
            .status()
            .is_ok_and(|s| s.success())
            && std::process::Command::new("openssl")
                .args(["x509", "-outform", "DER"])
                .arg("-in")
                .arg(&certificate)
                .arg("-out")
                .arg(&der)
                .status()
                .is_ok_and(|s| s.success());
        if !made {
            imprint_test_support::skip("openssl could not make the token signing certificate");
            return None;
        }
        let chain = STANDARD.encode(std::fs::read(&der).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        let expected = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if conn.read(&mut byte).unwrap_or(0) == 0 {
                        break;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let authorized = head.lines().any(|l| {
                    l.split_once(':').is_some_and(|(k, v)| {
                        k.eq_ignore_ascii_case("authorization") && v.trim() == expected
                    })
                });
                if !authorized {
                    let _ = conn.write_all(
                        b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                }
                let target = head.split(' ').nth(1).unwrap_or("");
                let query = target.split_once('?').map_or("", |(_, q)| q);
                let access: Vec<serde_json::Value> = query
                    .split('&')
                    .filter_map(|kv| kv.strip_prefix("scope="))
                    .filter_map(|scope| {
                        let scope = scope
                            .replace("%3A", ":")
                            .replace("%2C", ",")
                            .replace("%2F", "/");
                        let mut parts = scope.splitn(3, ':');
                        let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                        Some(serde_json::json!({
                            "type": kind, "name": name,
                            "actions": actions.split(',').collect::<Vec<_>>(),
                        }))
                    })
                    .collect();
                let now = jiff::Timestamp::now().as_second();
                let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [chain]});
                let claims = serde_json::json!({
                    "iss": ISSUER, "sub": user, "aud": SERVICE,
                    "exp": now + 300, "nbf": now - 10, "iat": now,
                    "jti": format!("{now}-{}", access.len()), "access": access,
                });
                let signing_input = format!(
                    "{}.{}",
                    URL_SAFE_NO_PAD.encode(header.to_string()),
                    URL_SAFE_NO_PAD.encode(claims.to_string())
                );
                let signature: Signature = key.sign(signing_input.as_bytes());
                let token = format!(
                    "{signing_input}.{}",
                    URL_SAFE_NO_PAD.encode(signature.to_bytes())
                );
                let body = serde_json::json!({"token": token, "expires_in": 300}).to_string();
                let _ = conn.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
        });
        Some(TokenServer { realm, certificate })
    }
}

#[test]
fn bearer_tokens_from_a_token_server() {
    let dir = tempfile::tempdir().unwrap();
    let Some(tokens) = token_server::start(dir.path(), "bob", "hunter2") else {
        return;
    };
    let Some(reg) = TestRegistry::start_with_config(&format!(
        "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
        tokens.realm,
        token_server::SERVICE,
        token_server::ISSUER,
        tokens.certificate.display()
    )) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = {
        let r = imprint_oci::parse_reference(&format!("{}/x:y", reg.addr)).unwrap();
        imprint_oci::Registry::new(&Default::default(), &[&r])
            .unwrap()
            .with_auth(oci_client::secrets::RegistryAuth::Basic(
                "bob".into(),
                "hunter2".into(),
            ))
    };
    let image_digest = push_test_image_through(&rt, &client, &reg.addr, "tokens/app");
    let profile = write_profile(dir.path(), &image_digest);
    let image = format!("{}/tokens/app@{image_digest}", reg.addr);
    let login = [
        &"--username" as &dyn AsRef<std::ffi::OsStr>,
        &"bob",
        &"--password-stdin",
    ];

    // Without credentials the token server refuses, and so does the push.
    let out = imprint_with(&[&"push", &profile, &"--image", &image], "", &[]);
    assert_exit(&out, 2);
    let mut push: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"push", &profile, &"--image", &image];
    push.extend(login);
    let out = imprint_with(&push, "hunter2\n", &[]);
    assert_exit(&out, 0);
    let artifact = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let mut discover: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"discover", &image];
    discover.extend(login);
    let out = imprint_with(&discover, "hunter2\n", &[]);
    assert_exit(&out, 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains(artifact.rsplit('@').next().unwrap()));

    let pulled = dir.path().join("pulled.json");
    let mut pull: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"pull", &artifact, &"-o", &pulled];
    pull.extend(login);
    let out = imprint_with(&pull, "hunter2\n", &[]);
    assert_exit(&out, 0);
    assert!(pulled.exists());
}
