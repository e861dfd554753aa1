use super::*;

fn d(name: &str) -> Digest {
    Digest::sha256_of(name.as_bytes())
}

fn profile() -> Box<imprint_schema::Profile> {
    Box::new(imprint_schema::Profile::new(d("web")))
}

#[test]
fn the_report_follows_the_resolver_and_keeps_what_stays_enforced() {
    let mut report = StatusReport::default();
    report.seen(&d("web"));
    assert_eq!(report.digests[&d("web")].state, "resolving");
    report.apply(&Update::Enforce {
        digest: d("web"),
        artifact: "registry.example/shop/web@sha256:aa".into(),
        profile: profile(),
    });
    // Unreachable: the last verified profile stays in force, and says so.
    report.apply(&Update::Status {
        digest: d("web"),
        status: Status::Unreachable("connection refused".into()),
    });
    let web = &report.digests[&d("web")];
    assert_eq!(web.state, "unreachable");
    assert_eq!(
        web.enforced.as_deref(),
        Some("registry.example/shop/web@sha256:aa")
    );
    assert_eq!(web.detail.as_deref(), Some("connection refused"));
    // Revoked: nothing enforced, and why.
    report.apply(&Update::Revoke {
        digest: d("web"),
        status: Status::Unsigned("no trusted signature".into()),
    });
    let web = &report.digests[&d("web")];
    assert_eq!(
        (web.state.as_str(), web.enforced.as_deref()),
        ("unsigned", None)
    );
    // A status without a reason has no detail.
    report.apply(&Update::Status {
        digest: d("db"),
        status: Status::NoProfile,
    });
    assert_eq!(report.digests[&d("db")].detail, None);
}

#[test]
fn an_index_gives_way_to_the_manifest_it_stands_for() {
    let mut report = StatusReport::default();
    report.seen(&d("index"));
    report.apply(&Update::Platform {
        index: d("index"),
        manifest: d("amd64"),
    });
    assert!(!report.digests.contains_key(&d("index")));
    assert_eq!(report.digests[&d("amd64")].indexes, [d("index")]);
    let text = render_text(&report);
    assert!(
        text.contains(d("amd64").as_str()) && text.contains("(index "),
        "{text}"
    );
}

#[test]
fn the_document_round_trips_and_the_table_says_when_the_resolver_stopped() {
    let mut report = StatusReport::default();
    report.apply(&Update::Status {
        digest: d("web"),
        status: Status::NoProfile,
    });
    let json = serde_json::to_string(&report).unwrap();
    assert_eq!(serde_json::from_str::<StatusReport>(&json).unwrap(), report);
    assert!(render_text(&report).starts_with("resolver: running\n"));
    report.resolver = ResolverHealth {
        running: false,
        stopped: Some("the profile cache is unusable".into()),
    };
    let text = render_text(&report);
    assert!(
        text.contains("STOPPED (the profile cache is unusable)"),
        "{text}"
    );
    assert!(text.contains("no-profile"), "{text}");
}

#[test]
fn the_metric_counts_decided_states_only() {
    let mut report = StatusReport::default();
    report.seen(&d("new"));
    report.apply(&Update::Status {
        digest: d("a"),
        status: Status::NoProfile,
    });
    report.apply(&Update::Status {
        digest: d("b"),
        status: Status::NoProfile,
    });
    let counts = report.count_by_state();
    assert_eq!(counts.get("no-profile"), Some(&2));
    assert_eq!(counts.get("resolving"), None);
}
