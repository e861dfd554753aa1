use std::path::Path;
use std::time::Duration;

use clap::CommandFactory;

use super::values::parse_duration;
use super::*;

const HEAD: &str = "apiVersion: imprint.dev/v1\nkind: AgentConfig\n";

fn file(body: &str) -> Result<Settings, SettingsError> {
    Settings::parse_file(&format!("{HEAD}{body}"), "agent.yaml")
}

#[test]
fn a_full_config_parses() {
    let s = file(
        "mode: enforce\nstateDir: /var/lib/imprint\nmetricsAddr: 0.0.0.0:9464\nkubernetes: true\nnode: node-1\nenforce:\n  keys: [/etc/imprint/cosign.pub]\n  profileDir: /etc/imprint/profiles\n  refresh: 10\noutputs:\n  alertmanager: {url: http://am:9093}\n  webhook: {url: https://h.example/x, headers: {Authorization: Bearer t}}\n  syslog: {url: tls://127.0.0.1:6514, ca: /etc/imprint/ca.pem}\n  stdout: true\n",
    )
    .unwrap();
    assert_eq!(s.mode, Some(Mode::Enforce));
    assert_eq!(s.enforce.refresh(), Duration::from_secs(10));
    assert!(s.kubernetes());
    assert_eq!(
        s.enforce.profile_dir.as_deref(),
        Some(Path::new("/etc/imprint/profiles"))
    );
    assert_eq!(
        s.outputs.syslog.ca.as_deref(),
        Some(Path::new("/etc/imprint/ca.pem"))
    );
    assert_eq!(
        s.outputs.webhook.headers,
        vec![WebhookHeader {
            name: "Authorization".into(),
            value: "Bearer t".into()
        }]
    );
    assert!(s.outputs.stdout());
    let s = file("mode: learn\nlearn: {learningPeriod: 10m, out: /tmp/p, exitWhenLearned: true}\n")
        .unwrap();
    assert!(s.learn.exit_when_learned());
    assert_eq!(s.learn.learning_period(), Duration::from_secs(600));
}

#[test]
fn mistakes_are_named_with_the_file_and_the_key() {
    for (body, needle) in [
        ("mode: guard\n", "mode: unknown variant `guard`"),
        ("runtime: docker\n", "runtime: unknown variant `docker`"),
        ("surprise: 1\n", "surprise"),
        ("learn: {learningPeriod: soon}\n", "learn.learningPeriod"),
        ("learn: {learningPeriod: 0s}\n", "must be positive"),
        (
            "outputs: {alertmanager: {url: am:9093}}\n",
            "outputs.alertmanager.url",
        ),
        (
            "outputs: {syslog: {url: ssl://x:6514}}\n",
            "outputs.syslog.url",
        ),
        ("outputs: {syslog: {url: udp://x:514, port: 1}}\n", "port"),
        (
            "enforce: {keys: [a], policy: p}\n",
            "keys (--key) or a policy",
        ),
        (
            "enforce: {profileRefs: [\"oci://r/p:latest\"]}\n",
            "enforce.profileRefs[0]",
        ),
        (
            "enforce: {profileRefs: [\"oci://r/p:latest\"]}\n",
            "must pin a digest",
        ),
        ("metricsAddr: nowhere\n", "metricsAddr"),
    ] {
        let e = file(body).unwrap_err().to_string();
        assert!(e.starts_with("agent.yaml: "), "{e}");
        assert!(e.contains(needle), "{needle}: {e}");
    }
    let e = Settings::parse_file("apiVersion: v2\nkind: AgentConfig\n", "a.yaml").unwrap_err();
    assert!(
        e.to_string().contains("not imprint.dev/v1/AgentConfig"),
        "{e}"
    );
}

fn load(args: &[&str]) -> Result<Settings, SettingsError> {
    Settings::load(std::iter::once("imprint-agent").chain(args.iter().copied()))
}

#[test]
fn a_flag_given_wins_over_its_key_and_the_rest_comes_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.yaml");
    std::fs::write(
        &path,
        format!(
            "{HEAD}mode: learn\nstateDir: /from/file\nkubernetes: true\nlearn: {{learningPeriod: 2h, out: /out}}\nenforce: {{rules: [a.yaml, b.yaml], refresh: 7}}\noutputs: {{stdout: true, webhook: {{url: https://h/x, headers: {{A: b}}}}}}\n"
        ),
    )
    .unwrap();
    let config = path.to_str().unwrap();

    // Only the file.
    let s = load(&["--config", config]).unwrap();
    assert_eq!(s.mode, Some(Mode::Learn));
    assert_eq!(s.state_dir(), Path::new("/from/file"));
    assert!(s.kubernetes() && s.outputs.stdout());
    assert_eq!(s.learn.learning_period(), Duration::from_secs(7200));
    assert_eq!(s.enforce.rules.len(), 2);
    assert_eq!(s.config.as_deref(), Some(path.as_path()));

    // Flags replace their keys; list flags replace the whole list.
    let s = load(&[
        "--config",
        config,
        "--mode",
        "enforce",
        "--state-dir",
        "/from/flag",
        "--learning-period",
        "90s",
        "--rules",
        "c.yaml",
        "--webhook-header",
        "X: y",
    ])
    .unwrap();
    assert_eq!(s.mode, Some(Mode::Enforce));
    assert_eq!(s.state_dir(), Path::new("/from/flag"));
    assert_eq!(s.learn.learning_period(), Duration::from_secs(90));
    assert_eq!(s.enforce.rules, vec![std::path::PathBuf::from("c.yaml")]);
    assert_eq!(s.outputs.webhook.headers.len(), 1);
    assert_eq!(s.outputs.webhook.headers[0].to_string(), "X: y");
    // What no flag named stays as the file says, booleans included.
    assert!(s.kubernetes() && s.outputs.stdout());
    assert_eq!(s.enforce.refresh(), Duration::from_secs(7));
    assert_eq!(s.learn.out.as_deref(), Some(Path::new("/out")));
    assert_eq!(
        s.outputs.webhook.url.as_ref().map(HttpUrl::as_str),
        Some("https://h/x")
    );
}

#[test]
fn without_a_file_the_defaults_apply_and_help_names_them() {
    let s = load(&[]).unwrap();
    assert_eq!(s.mode, None);
    assert_eq!(s.state_dir(), Path::new(DEFAULT_STATE_DIR));
    assert_eq!(s.runtime(), Runtime::Auto);
    assert_eq!(s.learn.learning_period(), Duration::from_secs(24 * 3600));
    assert_eq!(s.enforce.refresh(), Duration::from_secs(30));
    assert_eq!(s.enforce.incident_window(), Duration::from_secs(60));
    assert_eq!(s.persist_every(), Duration::from_secs(5));
    assert!(!s.kubernetes() && !s.include_host() && !s.outputs.stdout());
    assert!(!s.learn.exit_when_learned());
    // The help text states each default the accessors apply.
    let help = Settings::command().render_long_help().to_string();
    let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for default in [
        format!("[default: {DEFAULT_STATE_DIR}]"),
        format!("[default: {DEFAULT_LEARNING_PERIOD}]"),
        format!("[default: {DEFAULT_REFRESH}]"),
        format!("[default: {DEFAULT_INCIDENT_WINDOW}]"),
        format!("[default: {DEFAULT_PERSIST_EVERY}]"),
        "[default: auto]".to_string(),
    ] {
        assert!(help.contains(&default), "{default} not in the help");
    }
}

#[test]
fn flags_are_checked_by_the_same_parsers_as_the_file() {
    for (args, needle) in [
        (
            &["--alertmanager-url", "am:9093"][..],
            "http:// or https://",
        ),
        (&["--syslog-url", "syslog:514"][..], "udp://HOST:PORT"),
        (
            &["--profile-ref", "oci://r/p:latest"][..],
            "must pin a digest",
        ),
        (&["--refresh", "soon"][..], "not a duration"),
        (&["--refresh", "0"][..], "must be positive"),
        (&["--webhook-header", "no colon"][..], "Name: value"),
        (&["--mode", "guard"][..], "guard"),
        (
            &["--key", "k.pub", "--policy", "p.yaml"][..],
            "cannot be used with",
        ),
    ] {
        let e = load(args).unwrap_err().to_string();
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    // A flag's value may also be given with `=`; a bare number is seconds.
    let s = load(&["--refresh=2", "--incident-window", "1m30s"]).unwrap();
    assert_eq!(s.enforce.refresh(), Duration::from_secs(2));
    assert_eq!(s.enforce.incident_window(), Duration::from_secs(90));
}

#[test]
fn keys_from_the_file_and_a_policy_flag_do_not_go_together() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.yaml");
    std::fs::write(&path, format!("{HEAD}enforce: {{keys: [k.pub]}}\n")).unwrap();
    let e = load(&["--config", path.to_str().unwrap(), "--policy", "p.yaml"]).unwrap_err();
    assert!(e.to_string().contains("not both"), "{e}");
}

#[test]
fn durations_parse_in_every_documented_form() {
    for (text, seconds) in [
        ("30", 30.0),
        ("30s", 30.0),
        ("15m", 900.0),
        ("24h", 86400.0),
        ("1h30m", 5400.0),
        ("7d", 604800.0),
        ("PT2H", 7200.0),
        ("1.5s", 1.5),
    ] {
        let d = parse_duration(text).unwrap();
        assert_eq!(d.as_secs_f64(), seconds, "{text}");
    }
    for bad in ["", "soon", "-5s", "0", "0s", "1 fortnight"] {
        assert!(parse_duration(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn checked_values_say_what_is_wrong() {
    let e = "am:9093".parse::<HttpUrl>().unwrap_err();
    assert_eq!(
        e,
        MalformedValue {
            text: "am:9093".into(),
            rule: "start with http:// or https://"
        }
    );
    assert_eq!(
        e.to_string(),
        "\"am:9093\" must start with http:// or https://"
    );
    assert!(matches!(
        "x".parse::<WebhookHeader>(),
        Err(WebhookHeaderError::NoColon { text }) if text == "x"
    ));
    assert!(matches!(
        ": v".parse::<WebhookHeader>(),
        Err(WebhookHeaderError::NoName { .. })
    ));
    assert_eq!(
        "0".parse::<Period>(),
        Err(imprint_schema::DurationError::NotPositive("0".into()))
    );
}

#[test]
fn credentials_over_plain_http_to_another_host_are_refused_unless_allowed() {
    // Refused, from the flags and from the file alike; the error names the output,
    // the URL without its secrets, and how to allow it.
    for (args, needle) in [
        (
            &[
                "--webhook-url",
                "http://hooks.example/x",
                "--webhook-header",
                "Authorization: Bearer s3cret",
            ][..],
            "outputs.webhook (http://hooks.example/x): the headers Authorization would be sent over plain http://",
        ),
        (
            &[
                "--webhook-url",
                "http://u:s3cret@10.0.0.5:8080/x?token=s3cret",
            ][..],
            "outputs.webhook (http://***@10.0.0.5:8080/x?token=***): the credentials in the URL",
        ),
        (
            &[
                "--alertmanager-url",
                "http://admin:s3cret@alertmanager:9093",
            ][..],
            "outputs.alertmanager (http://***@alertmanager:9093): the credentials in the URL",
        ),
        // A host that only looks local is not loopback.
        (
            &[
                "--webhook-url",
                "http://127.0.0.1.example/x",
                "--webhook-header",
                "X-Key: s3cret",
            ][..],
            "the headers X-Key",
        ),
    ] {
        let e = load(args).unwrap_err();
        assert!(
            matches!(e, SettingsError::PlainHttpCredentials { .. }),
            "{args:?}: {e:?}"
        );
        let e = e.to_string();
        assert!(e.contains(needle), "{args:?}: {e}");
        assert!(!e.contains("s3cret"), "{e}");
        assert!(
            e.contains("--webhook-insecure") || e.contains("--alertmanager-insecure"),
            "{e}"
        );
    }
    let e = file(
        "outputs: {webhook: {url: http://h.example/x, headers: {Authorization: Bearer s3cret}}}\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("agent.yaml: outputs.webhook")
            && e.contains("outputs.webhook.insecure: true"),
        "{e}"
    );

    // Allowed: https, loopback, nothing secret, or the insecure option given.
    for args in [
        &[
            "--webhook-url",
            "https://h.example/x",
            "--webhook-header",
            "Authorization: Bearer t",
        ][..],
        &[
            "--webhook-url",
            "http://127.0.0.1:8080/x",
            "--webhook-header",
            "Authorization: t",
        ][..],
        &[
            "--webhook-url",
            "http://localhost/x",
            "--webhook-header",
            "Authorization: t",
        ][..],
        &[
            "--webhook-url",
            "http://[::1]:8080/x",
            "--webhook-header",
            "Authorization: t",
        ][..],
        &["--webhook-url", "http://u:p@127.0.0.2/x"][..],
        &["--webhook-url", "http://h.example/x"][..],
        &["--alertmanager-url", "http://alertmanager:9093"][..],
        &[
            "--webhook-url",
            "http://h.example/x",
            "--webhook-header",
            "Authorization: t",
            "--webhook-insecure",
        ][..],
        &[
            "--alertmanager-url",
            "http://a:b@alertmanager:9093",
            "--alertmanager-insecure",
        ][..],
    ] {
        load(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
    let s = file("outputs: {webhook: {url: http://h.example/x, headers: {A: b}, insecure: true}, alertmanager: {url: \"http://a:b@am:9093\", insecure: true}}\n")
        .unwrap();
    assert_eq!(s.outputs.webhook.insecure, Some(true));
    assert_eq!(s.outputs.alertmanager.insecure, Some(true));
}

#[test]
fn malformed_urls_are_named_without_their_credentials() {
    // (A flag's value is echoed by clap itself, to the one who typed it.)
    let e = file("outputs: {alertmanager: {url: \"htp://admin:s3cret@am:9093\"}}\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("outputs.alertmanager.url") && e.contains("htp://***@am:9093"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}
