use super::*;

/// `../shared/conformance/cosign-keys/tests/data/keys`, when present.
fn cosign_keys() -> Option<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/conformance/cosign-keys/tests/data/keys");
    if dir.is_dir() {
        Some(dir)
    } else {
        let why = format!(
            "{} absent (the shared fixtures are not beside the checkout)",
            dir.display()
        );
        // CI's IMPRINT_NO_SKIP=1 makes a missing fixture a failure, as imprint-test-support's skip does.
        assert!(
            std::env::var_os("IMPRINT_NO_SKIP").is_none_or(|v| v != "1"),
            "{why} (IMPRINT_NO_SKIP=1: a skipped real-component test fails)"
        );
        eprintln!("skipped: {why}");
        None
    }
}

#[test]
fn generated_keys_round_trip_through_cosigns_format() {
    for algorithm in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::Ed25519] {
        let key = SigningKey::generate(algorithm);
        for password in [&b"correct horse"[..], b""] {
            let pem = key.to_encrypted_pem(password);
            assert!(pem.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
            let read = SigningKey::from_pem(pem.as_bytes(), password).unwrap();
            assert_eq!(read.verifying_key(), key.verifying_key());
            assert!(matches!(
                SigningKey::from_pem(pem.as_bytes(), b"wrong"),
                Err(KeyError::Decrypt)
            ));
        }
        let public = VerifyingKey::from_pem(key.verifying_key().to_pem().as_bytes()).unwrap();
        let signature = key.sign(b"payload");
        public.verify(b"payload", &signature).unwrap();
        assert!(matches!(
            public.verify(b"payloaD", &signature),
            Err(KeyError::BadSignature)
        ));
    }
}

#[test]
fn keys_written_by_cosign_decrypt() {
    let Some(dir) = cosign_keys() else { return };
    for (file, password, algorithm) in [
        (
            "ecdsa_encrypted_private.key",
            &b"123"[..],
            KeyAlgorithm::EcdsaP256,
        ),
        (
            "ed25519_encrypted_private.key",
            b"123",
            KeyAlgorithm::Ed25519,
        ),
        (
            "cosign_generated_encrypted_empty_private.key",
            b"",
            KeyAlgorithm::EcdsaP256,
        ),
    ] {
        let pem = std::fs::read(dir.join(file)).unwrap();
        let key = SigningKey::from_pem(&pem, password).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key.algorithm(), algorithm, "{file}");
    }
    // The plain PKCS#8 files read too, and every key signs what it verifies.
    for (file, password) in [
        ("ecdsa_private.key", &b""[..]),
        ("ed25519_private.key", b""),
        ("cosign_generated_encrypted_empty_private.key", b""),
    ] {
        let key = SigningKey::from_pem(&std::fs::read(dir.join(file)).unwrap(), password).unwrap();
        key.verifying_key()
            .verify(b"m", &key.sign(b"m"))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
    }
    // The legacy label decrypts too (the ECDSA fixture uses it).
    let legacy = std::fs::read_to_string(dir.join("ecdsa_encrypted_private.key")).unwrap();
    assert!(legacy.starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----"));
    // RSA is named as unsupported, not mistaken for a bad password.
    let rsa = std::fs::read(dir.join("rsa_encrypted_private.key")).unwrap();
    let err = SigningKey::from_pem(&rsa, b"123").unwrap_err();
    assert!(err.to_string().contains("RSA"), "{err}");
}

fn with_params(pem: &str, n: u64, r: u64, p: u64) -> String {
    let (_, body) = pem_rfc7468::decode_vec(pem.as_bytes()).unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    json["kdf"]["params"] = serde_json::json!({"N": n, "r": r, "p": p});
    pem_rfc7468::encode_string(
        SIGSTORE_PRIVATE_KEY_LABEL,
        pem_rfc7468::LineEnding::LF,
        json.to_string().as_bytes(),
    )
    .unwrap()
}

#[test]
fn scrypt_parameters_outside_cosigns_are_refused_before_any_work() {
    let key = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let pem = key.to_encrypted_pem(b"pw");
    for (n, r, p) in [
        (1 << 30, 8, 1),
        (16384, 8, 1),
        (65536, 16, 1),
        (65536, 8, 4),
        (65537, 8, 1),
    ] {
        let err = SigningKey::from_pem(with_params(&pem, n, r, p).as_bytes(), b"pw").unwrap_err();
        assert!(
            matches!(err, KeyError::ScryptParameters { .. }),
            "{n},{r},{p}: {err}"
        );
    }
    // The accepted costs all get as far as decryption, which fails: the key was
    // made with another N.
    for n in [32768, 131072] {
        let err = SigningKey::from_pem(with_params(&pem, n, 8, 1).as_bytes(), b"pw").unwrap_err();
        assert!(matches!(err, KeyError::Decrypt), "{n}: {err}");
    }
}

#[test]
fn malformed_key_files_are_named() {
    let cases: [(&[u8], &str); 5] = [
        (b"not pem at all", "not a private key PEM"),
        (
            b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n",
            "\"CERTIFICATE\"",
        ),
        (
            b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\ne30=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n",
            "not cosign's JSON envelope",
        ),
        (
            b"-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
            "unsupported key",
        ),
        (b"\xff\xfe", "not UTF-8"),
    ];
    for (input, needle) in cases {
        let err = SigningKey::from_pem(input, b"").unwrap_err();
        assert!(err.to_string().contains(needle), "{needle}: {err}");
    }
    let err =
        VerifyingKey::from_pem(b"-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n")
            .unwrap_err();
    assert!(err.to_string().contains("not a PKIX public key"), "{err}");
}

#[test]
fn signatures_are_cosigns_encodings() {
    let ecdsa = SigningKey::generate(KeyAlgorithm::EcdsaP256);
    let der = ecdsa.sign(b"m");
    assert_eq!(der[0], 0x30, "ECDSA signatures are ASN.1 DER sequences");
    let ed = SigningKey::generate(KeyAlgorithm::Ed25519);
    assert_eq!(ed.sign(b"m").len(), 64);
    // A signature by one key does not verify with another, nor truncated.
    let other = SigningKey::generate(KeyAlgorithm::EcdsaP256).verifying_key();
    assert!(matches!(
        other.verify(b"m", &der),
        Err(KeyError::BadSignature)
    ));
    assert!(matches!(
        ecdsa.verifying_key().verify(b"m", &der[..der.len() - 3]),
        Err(KeyError::MalformedSignature(_))
    ));
}
