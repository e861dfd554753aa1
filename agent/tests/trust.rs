//! Trust that holds against registry writers and tenants, attacked for real:
//! a real registry, podman containers and the agent binary (root).
//!
//! - A tenant runs the digest of a profiled image from a repository it controls,
//!   holding an older signed profile (copied: signatures are by digest) and
//!   unsigned junk: the profile from the image's own repository is enforced
//!   whichever container runs first, and stays across a restart.
//! - With the policy's `profiles.repositories`, the tenant's repository is never
//!   asked, even when it holds a newer validly signed profile.
//! - A private registry (htpasswd) serves a multi-arch image and a pinned
//!   profile: the agent reads the index, verifies and enforces the pin, and
//!   restores it after a restart, with the credentials of REGISTRY_AUTH_FILE.

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// A profile of `digest` allowing these execs, written to `dir/name.yaml`.
fn profile_allowing(dir: &Path, name: &str, digest: &str, execs: &[&str]) -> std::path::PathBuf {
    let mut profile = imprint_schema::Profile::new(digest.parse().unwrap());
    for path in execs {
        profile.execs.push(imprint_schema::Exec {
            path: (*path).into(),
            args: None,
        });
    }
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, imprint_schema::to_yaml(&profile)).unwrap();
    path
}

/// An enforcing agent with these extra arguments, alerts to `webhook`.
fn enforcing(state: &Path, webhook: &str, extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "--mode".into(),
        "enforce".into(),
        "--webhook-url".into(),
        format!("http://{webhook}/").into(),
        "--state-dir".into(),
        state.into(),
        "--refresh".into(),
        "2".into(),
    ];
    args.extend(extra.iter().map(Into::into));
    args
}

fn run_in(podman: &Podman, image: &str, script: &str) {
    podman.run(&[
        "run",
        "--rm",
        "--tls-verify=false",
        image,
        "/bin/sh",
        "-c",
        script,
    ]);
}

/// Runs `deviate` until the webhook has an `anomaly.exec` alert for `digest`
/// (again every 5 s: a short-lived container's image can go unattributed), at
/// most 45 s.
fn alerts_on(what: &str, received: &Received, digest: &str, deviate: impl Fn()) {
    let deadline = std::time::Instant::now() + Duration::from_secs(45);
    loop {
        deviate();
        let next = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < next {
            if exec_anomaly_for(received, digest) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        assert!(std::time::Instant::now() < deadline, "no alert: {what}");
    }
}

#[test]
fn a_tenant_repository_of_the_same_digest_cannot_take_the_profile_away() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let reg = registry.addr.as_str();
    let (shop, digest) = podman.push_busybox(reg, "shop/web", "tenant-attack");
    let copied = push_again(
        &podman,
        "tenant-attack",
        &format!("{reg}/tenant/web:x"),
        None,
    );
    assert_eq!(copied, digest, "the tenant's copy has the same digest");
    let tenant = format!("{reg}/tenant/web@{digest}");
    let (key, public) = trusted_key(dir.path());
    // The tenant's repository: an older profile that allows busybox, validly
    // signed (copied from where CI once published it), and newer unsigned junk.
    let permissive = profile_allowing(dir.path(), "old", &digest, &["/bin/sh", "/bin/busybox"]);
    publish_to(reg, "tenant/web", "tenant/web", &permissive, Some(&key));
    std::thread::sleep(Duration::from_millis(1100));
    // The shop's current profile allows only the shell.
    let strict = profile_allowing(dir.path(), "strict", &digest, &["/bin/sh"]);
    let artifact = publish_to(reg, "shop/web", "shop/web", &strict, Some(&key));
    std::thread::sleep(Duration::from_millis(1100));
    publish_to(reg, "tenant/web", "tenant/web", &permissive, None);

    let (webhook, received) = webhook_receiver();
    let state = dir.path().join("state");
    let public = public.to_str().unwrap();
    let args = enforcing(&state, &webhook, &["--key", public]);
    let agent = Agent::spawn(&args);
    // The tenant's container runs first: the shop's reference, seen next, still
    // adds its place, and the shop's newer profile wins over the tenant's copy.
    run_in(&podman, &tenant, "true");
    agent.wait_for_log(
        &format!("{digest} seen from {reg}/tenant/web"),
        Duration::from_secs(30),
    );
    run_in(&podman, &shop, "true");
    let enforced = format!("enforcing {reg}/shop/web@{artifact} for {digest}");
    agent.wait_for_log(&enforced, Duration::from_secs(30));
    run_in(&podman, &tenant, "true");
    alerts_on(
        "an anomaly by the shop's profile",
        &received,
        &digest,
        || run_in(&podman, &tenant, "/bin/busybox id > /dev/null"),
    );
    drop(agent);

    // After a restart the tenant's container comes first: both places are
    // remembered (and asked), and the shop's profile stays.
    received.lock().unwrap().clear();
    let remembered = std::fs::read_to_string(state.join("verified.json")).unwrap();
    assert!(
        remembered.contains(&format!("{reg}/tenant/web"))
            && remembered.contains(&format!("{reg}/shop/web")),
        "{remembered}"
    );
    let agent = Agent::spawn(&args);
    agent.wait_for_log(&enforced, Duration::from_secs(30));
    run_in(&podman, &tenant, "true");
    // A refresh round (2 s) after the tenant's repository was asked.
    std::thread::sleep(Duration::from_secs(3));
    alerts_on(
        "an anomaly by the shop's profile after the restart",
        &received,
        &digest,
        || run_in(&podman, &tenant, "/bin/busybox id > /dev/null"),
    );
    let log = agent.log();
    assert!(!log.contains("no longer enforcing"), "{log}");
    assert!(
        !log.contains(&format!("enforcing {reg}/tenant/web@")),
        "{log}"
    );
    drop(agent);
}

#[test]
fn with_profile_repositories_set_a_tenant_repository_is_never_asked() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    // Images and profiles are pushed to the registry directly; containers and
    // the agent reach it through the proxy, which records every request.
    let proxy = support::FaultProxy::start(&registry.addr, |_, _| support::Fault::Forward);
    let dir = tempfile::tempdir().unwrap();
    let reg = registry.addr.as_str();
    let (_, digest) = podman.push_busybox(reg, "shop/web", "tenant-globs");
    let copied = push_again(
        &podman,
        "tenant-globs",
        &format!("{reg}/tenant/web:x"),
        None,
    );
    assert_eq!(copied, digest);
    // The policy names the key by its file, dir/cosign.pub.
    let (key, _) = trusted_key(dir.path());
    let strict = profile_allowing(dir.path(), "strict", &digest, &["/bin/sh"]);
    let artifact = publish_to(reg, "shop/web", "shop/web", &strict, Some(&key));
    std::thread::sleep(Duration::from_millis(1100));
    // Newer and validly signed: were the tenant's repository asked, it would win.
    let permissive = profile_allowing(dir.path(), "open", &digest, &["/bin/sh", "/bin/busybox"]);
    publish_to(reg, "tenant/web", "tenant/web", &permissive, Some(&key));
    let via = proxy.addr.as_str();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: imprint.dev/v1\nkind: VerificationPolicy\nauthorities:\n  - key: {{path: cosign.pub}}\nprofiles:\n  repositories: [\"{via}/shop/**\"]\n"
        ),
    )
    .unwrap();

    let (webhook, received) = webhook_receiver();
    let state = dir.path().join("state");
    let args = enforcing(&state, &webhook, &["--policy", policy.to_str().unwrap()]);
    let agent = Agent::spawn(&args);
    run_in(&podman, &format!("{via}/shop/web@{digest}"), "true");
    let enforced = format!("enforcing {via}/shop/web@{artifact} for {digest}");
    agent.wait_for_log(&enforced, Duration::from_secs(30));
    drop(agent);
    // After a restart the tenant's reference is the first the agent sees.
    let agent = Agent::spawn(&args);
    let tenant = format!("{via}/tenant/web@{digest}");
    run_in(&podman, &tenant, "true");
    agent.wait_for_log(
        &format!("{digest} seen from {via}/tenant/web, which the policy's profiles.repositories does not admit"),
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_secs(3));
    alerts_on(
        "an anomaly by the shop's profile",
        &received,
        &digest,
        || run_in(&podman, &tenant, "/bin/busybox id > /dev/null"),
    );
    drop(agent);
    // Discovery's requests (the referrers API, cosign's sha256-<hex> tags) went
    // to shop/web, never to tenant/web (podman's pulls name sha256:<hex>).
    let heads = proxy.heads();
    let discovery_of = |repo: &str| {
        let referrers = format!("/v2/{repo}/referrers/");
        let tags = format!("/v2/{repo}/manifests/sha256-");
        heads
            .iter()
            .filter(|h| h.contains(&referrers) || h.contains(&tags))
            .count()
    };
    assert!(discovery_of("shop/web") > 0, "{heads:#?}");
    assert_eq!(discovery_of("tenant/web"), 0, "{heads:#?}");
}

/// A private registry: a multi-arch index and a pinned profile for its amd64
/// manifest, readable only with credentials; the agent has them in
/// REGISTRY_AUTH_FILE, as podman keeps them.
#[test]
fn a_pinned_profile_for_a_multi_arch_image_in_a_private_registry_is_enforced_and_restored() {
    if std::env::consts::ARCH != "x86_64" {
        support::skip_other_arch("the index built here has an amd64 entry to run");
        return;
    }
    let Some(Env {
        serial: _serial,
        registry: public_registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let Some(private) = support::TestRegistry::start_with_htpasswd("alice", "s3cret") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let reg = private.addr.as_str();
    let creds = Some("alice:s3cret");
    podman.push_busybox(&public_registry.addr, "build/multi", "private-amd64");
    podman.push_busybox(&public_registry.addr, "build/multi", "private-arm64");
    let manifest = push_again(
        &podman,
        "private-amd64",
        &format!("{reg}/shop/multi:amd64"),
        creds,
    );
    let other = push_again(
        &podman,
        "private-arm64",
        &format!("{reg}/shop/multi:arm64"),
        creds,
    );
    let named = imprint_oci::parse_reference(&format!("{reg}/shop/multi:amd64")).unwrap();
    let client = imprint_oci::Registry::new(&Default::default(), &[&named])
        .unwrap()
        .with_auth(
            imprint_oci::credentials::Credential::Basic {
                username: "alice".into(),
                password: "s3cret".into(),
            }
            .into(),
        );
    let tag = imprint_oci::parse_reference(&format!("{reg}/shop/multi:latest")).unwrap();
    let arm64 = named.clone_with_digest(other.clone());
    let index = push_index(&client, &named, &arm64, &tag);
    let (key, public) = trusted_key(dir.path());
    let strict = profile_allowing(dir.path(), "strict", &manifest, &["/bin/sh"]);
    let artifact = publish_with(&client, reg, "profiles/multi", "shop/multi", &strict, &key);
    let auth = dir.path().join("auth.json");
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    std::fs::write(
        &auth,
        format!(r#"{{"auths": {{"{reg}": {{"auth": "{encoded}"}}}}}}"#),
    )
    .unwrap();

    let (webhook, received) = webhook_receiver();
    let state = dir.path().join("state");
    let pin = format!("oci://{reg}/profiles/multi@{artifact}");
    let public = public.to_str().unwrap();
    let args = enforcing(&state, &webhook, &["--key", public, "--profile-ref", &pin]);
    let with_credentials = [("REGISTRY_AUTH_FILE", auth.as_path())];
    let agent = Agent::spawn_with_env(&args, &with_credentials);
    let by_index = format!("{reg}/shop/multi@{index}");
    // podman reads the same file (its run has no --creds).
    let authfile = format!("--authfile={}", auth.display());
    let run = |script: &str| {
        podman.run(&[
            "run",
            "--rm",
            "--tls-verify=false",
            &authfile,
            &by_index,
            "/bin/sh",
            "-c",
            script,
        ])
    };
    run("true");
    agent.wait_for_log(
        &format!("{index} is a multi-platform index; this node (linux/amd64) runs {manifest}"),
        Duration::from_secs(30),
    );
    let enforced = format!("enforcing {reg}/profiles/multi@{artifact} for {manifest}");
    agent.wait_for_log(&enforced, Duration::from_secs(30));
    alerts_on(
        "an anomaly by the private pinned profile",
        &received,
        &manifest,
        || {
            run("/bin/busybox id > /dev/null");
        },
    );
    drop(agent);

    // Restarted with the cache gone: the remembered artifact is pulled from the
    // private registry again before any container runs, so only with credentials.
    std::fs::remove_dir_all(state.join("cache")).unwrap();
    let anonymous = Agent::spawn_with_env(&args, &[]);
    std::thread::sleep(Duration::from_secs(5));
    let log = anonymous.log();
    assert!(
        !log.contains(&enforced),
        "restored without credentials:\n{log}"
    );
    drop(anonymous);
    std::fs::remove_dir_all(state.join("cache")).ok();
    let agent = Agent::spawn_with_env(&args, &with_credentials);
    agent.wait_for_log(&enforced, Duration::from_secs(30));
    received.lock().unwrap().clear();
    alerts_on(
        "an anomaly by the restored profile",
        &received,
        &manifest,
        || {
            run("/bin/busybox id > /dev/null");
        },
    );
    drop(agent);
}

/// The fallback-tag index of `image` in `repository`, rewritten to list only
/// what `keep` admits: what a registry writer without a key can do.
fn rewrite_listing(registry: &str, repository: &str, image: &str, keep: impl Fn(&str) -> bool) {
    use imprint_oci::layout;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let image: imprint_schema::Digest = image.parse().unwrap();
        let tag = imprint_oci::parse_reference(&format!(
            "{registry}/{repository}:{}",
            layout::fallback_tag(&image)
        ))
        .unwrap();
        let client = imprint_oci::Registry::new(&Default::default(), &[&tag]).unwrap();
        let repo = imprint_oci::parse_reference(&format!("{registry}/{repository}")).unwrap();
        let listed = client.referrers(&repo, &image).await.unwrap();
        let mut index = layout::Index::new();
        index.manifests = (listed.manifests.into_iter())
            .filter(|d| keep(d.digest.as_str()))
            .collect();
        let bytes = serde_json::to_vec(&index).unwrap();
        client
            .push_manifest(&tag, &bytes, layout::INDEX_MEDIA_TYPE)
            .await
            .unwrap();
    });
}

#[test]
fn deleting_the_newest_profile_from_the_listing_does_not_bring_back_an_older_one() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let reg = registry.addr.as_str();
    let (shop, digest) = podman.push_busybox(reg, "shop/web", "rollback");
    let (key, public) = trusted_key(dir.path());
    // v1 (older) allowed busybox; v2, the current one, allows only the shell.
    let old = profile_allowing(dir.path(), "v1", &digest, &["/bin/sh", "/bin/busybox"]);
    let old_artifact = publish_to(reg, "shop/web", "shop/web", &old, Some(&key));
    std::thread::sleep(Duration::from_millis(1100));
    let strict = profile_allowing(dir.path(), "v2", &digest, &["/bin/sh"]);
    let artifact = publish_to(reg, "shop/web", "shop/web", &strict, Some(&key));

    let (webhook, received) = webhook_receiver();
    let state = dir.path().join("state");
    let args = enforcing(&state, &webhook, &["--key", public.to_str().unwrap()]);
    let agent = Agent::spawn(&args);
    run_in(&podman, &shop, "true");
    let enforced = format!("enforcing {reg}/shop/web@{artifact} for {digest}");
    agent.wait_for_log(&enforced, Duration::from_secs(30));

    // The attack: the newest artifact is taken out of the fallback index. The
    // older one, validly signed, is all discovery now finds.
    rewrite_listing(reg, "shop/web", &digest, |d| d != artifact);
    agent.wait_for_log(&format!("{digest}: withdrawn:"), Duration::from_secs(30));
    wait_until("the withdrawal alert", Duration::from_secs(30), || {
        alerts_with_rule(&received, "agent-profile-withdrawn") > 0
    });
    // v2 stays in force: busybox still deviates.
    alerts_on(
        "an anomaly by the newest profile",
        &received,
        &digest,
        || run_in(&podman, &shop, "/bin/busybox id > /dev/null"),
    );
    let log = agent.log();
    assert!(
        !log.contains(&format!("@{old_artifact} for")),
        "the older one was enforced:\n{log}"
    );
    assert!(!log.contains("no longer enforcing"), "{log}");
    drop(agent);

    // After a restart, too: the memory of the newest outlives the process.
    received.lock().unwrap().clear();
    let agent = Agent::spawn(&args);
    agent.wait_for_log(&enforced, Duration::from_secs(30));
    run_in(&podman, &shop, "true");
    agent.wait_for_log(&format!("{digest}: withdrawn:"), Duration::from_secs(30));
    alerts_on(
        "an anomaly by the newest profile after the restart",
        &received,
        &digest,
        || run_in(&podman, &shop, "/bin/busybox id > /dev/null"),
    );
    let log = agent.log();
    assert!(
        !log.contains(&format!("@{old_artifact} for")),
        "the older one was enforced:\n{log}"
    );
}

/// Revokes `artifact` (in `repository`) with `key`, as `imprint revoke` does.
fn revoke(registry: &str, repository: &str, artifact: &str, key: &imprint_oci::SigningKey) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let at =
            imprint_oci::parse_reference(&format!("{registry}/{repository}@{artifact}")).unwrap();
        let client = imprint_oci::Registry::new(&Default::default(), &[&at]).unwrap();
        client
            .revoke(
                &at,
                key,
                Some("learned on a compromised runner".into()),
                false,
                jiff::Timestamp::now(),
            )
            .await
            .unwrap();
    });
}

#[test]
fn a_signed_revocation_goes_back_beats_a_pin_and_outlives_its_deletion() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let reg = registry.addr.as_str();
    let (shop, digest) = podman.push_busybox(reg, "shop/web", "revoke");
    let (key, public) = trusted_key(dir.path());
    let old = profile_allowing(dir.path(), "v1", &digest, &["/bin/sh", "/bin/busybox"]);
    let old_artifact = publish_to(reg, "shop/web", "shop/web", &old, Some(&key));
    std::thread::sleep(Duration::from_millis(1100));
    let strict = profile_allowing(dir.path(), "v2", &digest, &["/bin/sh"]);
    let artifact = publish_to(reg, "shop/web", "shop/web", &strict, Some(&key));

    let (webhook, _received) = webhook_receiver();
    let state = dir.path().join("state");
    let public = public.to_str().unwrap();
    let args = enforcing(&state, &webhook, &["--key", public]);
    let agent = Agent::spawn(&args);
    run_in(&podman, &shop, "true");
    agent.wait_for_log(
        &format!("enforcing {reg}/shop/web@{artifact} for {digest}"),
        Duration::from_secs(30),
    );
    // The newest is revoked by the key the policy trusts: that is an explicit
    // act, so the agent goes back to the older one.
    revoke(reg, "shop/web", &artifact, &key);
    agent.wait_for_log(&format!("{artifact} revoked by"), Duration::from_secs(30));
    agent.wait_for_log(
        &format!("enforcing {reg}/shop/web@{old_artifact} for {digest}"),
        Duration::from_secs(30),
    );
    drop(agent);

    // The revocation is deleted from the registry (the image's .att tag now
    // holds nothing of it): the revoked artifact does not come back, neither at
    // a restart nor when --profile-ref pins it.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let image: imprint_schema::Digest = digest.parse().unwrap();
        let tag = imprint_oci::parse_reference(&format!(
            "{reg}/shop/web:{}",
            imprint_oci::signing::attestation_tag(&image)
        ))
        .unwrap();
        let client = imprint_oci::Registry::new(&Default::default(), &[&tag]).unwrap();
        let (manifest, config) = imprint_oci::signing::tag_manifest(Vec::new());
        client.push_blob(&tag, &config).await.unwrap();
        client
            .push_manifest(&tag, &manifest, imprint_oci::layout::MANIFEST_MEDIA_TYPE)
            .await
            .unwrap();
    });
    let agent = Agent::spawn(&args);
    run_in(&podman, &shop, "true");
    agent.wait_for_log(
        &format!("enforcing {reg}/shop/web@{old_artifact} for {digest}"),
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_secs(3));
    let log = agent.log();
    assert!(
        !log.contains(&format!("enforcing {reg}/shop/web@{artifact} for")),
        "the revoked artifact came back:\n{log}"
    );
    drop(agent);
    // Git pins the revoked profile (a delivered copy of its document): the
    // revocation beats the pin, and nothing is enforced for the digest.
    let delivered = dir.path().join("delivered");
    std::fs::create_dir_all(&delivered).unwrap();
    std::fs::copy(&strict, delivered.join("web.yaml")).unwrap();
    let delivered = delivered.to_str().unwrap();
    let pinned = enforcing(
        &state,
        &webhook,
        &["--key", public, "--profile-dir", delivered],
    );
    let agent = Agent::spawn(&pinned);
    run_in(&podman, &shop, "true");
    agent.wait_for_log(&format!("{digest}: revoked"), Duration::from_secs(30));
    std::thread::sleep(Duration::from_secs(3));
    let log = agent.log();
    for enforced in [&artifact, &old_artifact] {
        assert!(
            !log.contains(&format!("enforcing {reg}/shop/web@{enforced} for")),
            "{enforced} was enforced:\n{log}"
        );
    }
}

#[test]
fn offline_the_kept_signatures_are_judged_by_the_current_policy_and_the_offline_age_ends() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let reg = registry.addr.clone();
    let (shop, digest) = podman.push_busybox(&reg, "shop/web", "offline");
    // The container runs from a local copy: the registry will be gone.
    podman.run(&["pull", "--tls-verify=false", &shop]);
    let (key, public) = trusted_key(dir.path());
    let strict = profile_allowing(dir.path(), "v1", &digest, &["/bin/sh"]);
    let artifact = publish_to(&reg, "shop/web", "shop/web", &strict, Some(&key));
    let (webhook, received) = webhook_receiver();
    let state = dir.path().join("state");
    let public = public.to_str().unwrap();
    let args = enforcing(&state, &webhook, &["--key", public]);
    let agent = Agent::spawn(&args);
    run_in(&podman, &shop, "true");
    let enforced = format!("enforcing {reg}/shop/web@{artifact} for {digest}");
    agent.wait_for_log(&enforced, Duration::from_secs(30));
    drop(agent);
    // The registry goes away.
    drop(registry);

    // Same key: the kept signatures verify again, and the cached profile is
    // enforced before (without) the registry.
    let agent = Agent::spawn(&args);
    agent.wait_for_log(&enforced, Duration::from_secs(30));
    drop(agent);

    // The key is taken out of the policy (another one trusted): the kept
    // signatures no longer verify, and nothing is restored.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let (_, other_public) = trusted_key(&other);
    let other_args = enforcing(&state, &webhook, &["--key", other_public.to_str().unwrap()]);
    let agent = Agent::spawn(&other_args);
    agent.wait_for_log(
        "no longer verifies under the current policy",
        Duration::from_secs(30),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(!agent.log().contains(&enforced), "{}", agent.log());
    drop(agent);

    // With the first key again and a maximum offline age: the profile was last
    // confirmed by the registry before it went away, so it stops being enforced,
    // with an alert.
    received.lock().unwrap().clear();
    let limited = enforcing(
        &state,
        &webhook,
        &["--key", public, "--max-offline-age", "1"],
    );
    let agent = Agent::spawn(&limited);
    agent.wait_for_log(&enforced, Duration::from_secs(30));
    run_in(&podman, &shop, "true");
    agent.wait_for_log(
        &format!("no longer enforcing a profile for {digest}: offline-too-long"),
        Duration::from_secs(30),
    );
    wait_until("the offline alert", Duration::from_secs(30), || {
        alerts_with_rule(&received, "agent-profile-offline-too-long") > 0
    });
}

#[test]
fn a_slow_registry_delays_only_the_digests_it_holds() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let Some(slow_registry) = support::TestRegistry::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The slow place answers profile lookups (referrers, fallback tags) one byte
    // every half second; images are pulled through it at full speed.
    let proxy = support::FaultProxy::start(&slow_registry.addr, |head, _| {
        if head.contains("/referrers/") || head.contains("/manifests/sha256-") {
            support::Fault::Drip {
                every: Duration::from_millis(500),
            }
        } else {
            support::Fault::Forward
        }
    });
    let (_, slow_digest) = podman.push_busybox(&slow_registry.addr, "slow/web", "slow");
    let slow = format!("{}/slow/web@{slow_digest}", proxy.addr);
    // Something to list, so its fallback tag answers 200 (a 404's body is not read).
    let listed = profile_allowing(dir.path(), "slow", &slow_digest, &["/bin/sh"]);
    publish_to(&slow_registry.addr, "slow/web", "slow/web", &listed, None);
    let reg = registry.addr.as_str();
    let (shop, digest) = podman.push_busybox(reg, "shop/web", "fast");
    assert_ne!(slow_digest, digest);
    let (key, public) = trusted_key(dir.path());
    let strict = profile_allowing(dir.path(), "strict", &digest, &["/bin/sh"]);
    let artifact = publish_to(reg, "shop/web", "shop/web", &strict, Some(&key));

    let (webhook, _received) = webhook_receiver();
    let state = dir.path().join("state");
    let args = enforcing(&state, &webhook, &["--key", public.to_str().unwrap()]);
    let agent = Agent::spawn(&args);
    // The slow digest first: its lookup is stuck in the drip...
    run_in(&podman, &slow, "true");
    agent.wait_for_log(&format!("{slow_digest} seen from"), Duration::from_secs(30));
    // ...and the other digest's profile is enforced meanwhile, not after it.
    run_in(&podman, &shop, "true");
    agent.wait_for_log(
        &format!("enforcing {reg}/shop/web@{artifact} for {digest}"),
        Duration::from_secs(20),
    );
    let log = agent.log();
    assert!(
        !log.contains(&format!("{slow_digest}: ")),
        "the slow lookup finished:\n{log}"
    );
}

#[test]
fn a_flooded_signature_tag_is_an_alert_even_when_the_signature_is_found() {
    let Some(Env {
        serial: _serial,
        registry,
        podman,
    }) = setup()
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let reg = registry.addr.as_str();
    let (shop, digest) = podman.push_busybox(reg, "shop/web", "flood");
    let (key, public) = trusted_key(dir.path());
    let strict = profile_allowing(dir.path(), "strict", &digest, &["/bin/sh"]);
    let artifact = publish_to(reg, "shop/web", "shop/web", &strict, Some(&key));
    // The signature tag, rewritten: a genuine signature first, then more junk
    // layers than are examined.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use base64::Engine as _;
        use imprint_oci::{layout, signing};
        let signed: imprint_schema::Digest = artifact.parse().unwrap();
        let repository = imprint_oci::parse_reference(&format!("{reg}/shop/web")).unwrap();
        let client = imprint_oci::Registry::new(&Default::default(), &[&repository]).unwrap();
        let payload = signing::simple_signing_payload(&format!("{reg}/shop/web"), &signed);
        let mut genuine = layout::Descriptor::of(signing::SIMPLE_SIGNING_MEDIA_TYPE, &payload);
        genuine.annotations.insert(
            signing::SIGNATURE_ANNOTATION.into(),
            base64::engine::general_purpose::STANDARD.encode(key.sign(&payload)),
        );
        let junk = layout::Descriptor::of(signing::SIMPLE_SIGNING_MEDIA_TYPE, b"junk");
        client.push_blob(&repository, &payload).await.unwrap();
        client.push_blob(&repository, b"junk").await.unwrap();
        let mut layers = vec![genuine];
        layers.extend(std::iter::repeat_n(junk, signing::MAX_LAYERS_PER_TAG + 10));
        let (manifest, config) = signing::tag_manifest(layers);
        client.push_blob(&repository, &config).await.unwrap();
        let tag = imprint_oci::parse_reference(&format!(
            "{reg}/shop/web:{}",
            signing::signature_tag(&signed)
        ))
        .unwrap();
        client
            .push_manifest(&tag, &manifest, layout::MANIFEST_MEDIA_TYPE)
            .await
            .unwrap();
    });
    let (webhook, received) = webhook_receiver();
    let state = dir.path().join("state");
    let args = enforcing(&state, &webhook, &["--key", public.to_str().unwrap()]);
    let agent = Agent::spawn(&args);
    run_in(&podman, &shop, "true");
    agent.wait_for_log(
        &format!("enforcing {reg}/shop/web@{artifact} for {digest}"),
        Duration::from_secs(30),
    );
    wait_until("the flood alert", Duration::from_secs(30), || {
        alerts_with_rule(&received, "agent-listing-flooded") > 0
    });
    // Said once, not at every refresh.
    std::thread::sleep(Duration::from_secs(5));
    let floods = alerts_with_rule(&received, "agent-listing-flooded");
    assert_eq!(floods, 1);
}
