//! Import tests: helpers, the Kubescape corpus and the mapping of each field.

use std::path::Path;

use super::conversion::map_path;
use super::documents::digest_of_image_id;
use super::network::{map_dns, map_ip};
use super::*;
use crate::profile::{Completeness, Exec, Peer, Protocol};

mod edge_cases;

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/corpora/kubescape"
);
const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The corpus file, or `None` (after saying so) when the corpus is absent.
fn corpus(rel: &str) -> Option<Vec<u8>> {
    let dir = Path::new(CORPUS);
    if !dir.is_dir() {
        // CI's IMPRINT_NO_SKIP=1 makes a missing corpus a failure, as imprint-test-support's skip does.
        assert!(
            std::env::var_os("IMPRINT_NO_SKIP").is_none_or(|v| v != "1"),
            "../shared/corpora/kubescape absent (IMPRINT_NO_SKIP=1: a skipped real-component test fails)"
        );
        println!("skipped: ../shared/corpora/kubescape absent");
        return None;
    }
    Some(std::fs::read(dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}")))
}

fn with_digest() -> ImportOptions {
    ImportOptions {
        image_digest: Some(DIGEST.parse().unwrap()),
        container: None,
    }
}

fn select(name: &str) -> ImportOptions {
    ImportOptions {
        image_digest: Some(DIGEST.parse().unwrap()),
        container: Some(name.into()),
    }
}

fn one(bytes: &[u8], options: &ImportOptions) -> Imported {
    let mut all = import(bytes, options).expect("imports");
    assert_eq!(
        all.len(),
        1,
        "{:?}",
        all.iter().map(|i| &i.container).collect::<Vec<_>>()
    );
    let item = all.remove(0);
    assert!(validate(&item.profile).is_empty());
    assert_eq!(item.profile, item.profile.clone().normalized());
    item
}

fn exec<'a>(p: &'a Profile, path: &str) -> Vec<&'a Exec> {
    p.execs.iter().filter(|e| e.path == path).collect()
}

fn args(list: &[&str]) -> Option<Vec<String>> {
    Some(list.iter().map(|s| s.to_string()).collect())
}

fn peer(
    dns: Option<&str>,
    cidr: Option<&str>,
    port: Option<u16>,
    protocol: Option<Protocol>,
) -> Peer {
    Peer {
        dns: dns.map(str::to_string),
        cidr: cidr.map(str::to_string),
        port,
        protocol,
    }
}

fn warned(item: &Imported, needle: &str) -> bool {
    item.warnings.iter().any(|w| w.contains(needle))
}

#[test]
fn nginx_application_profile_json() {
    let Some(bytes) =
        corpus("node-agent/pre-containerprofile/mocks/testdata/nginx_applicationprofiles.json")
    else {
        return;
    };
    // No imageID: the error names the (unnamed) container.
    let err = import(&bytes, &ImportOptions::default()).unwrap_err();
    assert!(
        matches!(&err, ImportError::MissingDigest { container, .. } if container == "containers[0]"),
        "{err}"
    );
    assert!(err.to_string().contains("containers[0]"), "{err}");

    let item = one(&bytes, &with_digest());
    let p = &item.profile;
    assert_eq!(item.container, "containers[0]");
    assert_eq!(p.image.digest, DIGEST);
    assert_eq!(p.image.platform, None, "two architectures");
    assert_eq!(p.learning.completeness, Completeness::Complete);
    assert_eq!(
        p.learning.start.unwrap().to_string(),
        "2024-03-19T09:27:05Z"
    );
    assert_eq!(p.learning.end, p.learning.start);
    assert_eq!(p.learning.observed_containers, 1);
    // Sorted argument lists: order lost, so any arguments...
    assert_eq!(exec(p, "/usr/sbin/nginx")[0].args, None);
    // ...except where at most one argument is left besides argv[0].
    assert_eq!(
        exec(p, "/docker-entrypoint.d/30-tune-worker-processes.sh")[0].args,
        args(&[])
    );
    // No args recorded: any arguments.
    assert_eq!(exec(p, "/etc/nginx/conf.d/sedzJNyeW")[0].args, None);
    assert!(warned(&item, "sorted arguments"));
    assert!(p.capabilities.contains(&"NET_BIND_SERVICE".to_string()));
    // Syscalls come from the seccomp allow-list, deduplicated.
    assert!(p.syscalls.contains(&"accept4".to_string()));
    assert_eq!(p.syscalls.iter().filter(|s| *s == "futex").count(), 1);
    assert!(warned(&item, "seccompProfile"));
}

#[test]
fn application_profile_yaml_with_image_id() {
    let Some(bytes) =
        corpus("node-agent/pre-containerprofile/tests/resources/known-application-profile.yaml")
    else {
        return;
    };
    let item = one(&bytes, &ImportOptions::default());
    let p = &item.profile;
    assert_eq!(item.container, "curl");
    assert_eq!(
        p.image.digest,
        "sha256:08e466006f0860e54fc299378de998935333e0e130a15f6f98482e9f8dab3058"
    );
    assert_eq!(
        p.image.reference.as_deref(),
        Some("docker.io/curlimages/curl:8.5.0")
    );
    assert_eq!(p.image.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(
        exec(p, "/usr/bin/curl")[0].args,
        args(&["-sm2", "fusioncore.ai"])
    );
    assert_eq!(exec(p, "/bin/cat")[0].args, args(&[]));
    let open = p
        .opens
        .iter()
        .find(|o| o.path == "/proc/*/cgroup")
        .expect("⋯ became *");
    assert_eq!(open.flags.names(), ["O_CLOEXEC", "O_RDONLY"]);
    assert!(p.opens.iter().any(|o| o.path == "/proc/*/task/1/fd"));
    assert!(
        p.capabilities.contains(&"CHOWN".to_string()),
        "CAP_ stripped"
    );
    assert!(p.capabilities.contains(&"SYS_ADMIN".to_string()));
    assert!(p.syscalls.contains(&"close_range".to_string()));
    assert!(warned(&item, "skipped 1 HTTP endpoint"));
    assert_eq!(p.learning.start, None);
    assert_eq!(p.learning.completeness, Completeness::Partial);
}

#[test]
fn open_star_is_any_depth() {
    let Some(bytes) = corpus(
        "node-agent/pre-containerprofile/tests/resources/known-application-profile-wildcards.yaml",
    ) else {
        return;
    };
    let p = one(&bytes, &ImportOptions::default()).profile;
    let paths: Vec<&str> = p.opens.iter().map(|o| o.path.as_str()).collect();
    assert!(paths.contains(&"/etc/**"), "{paths:?}");
    assert!(paths.contains(&"/proc/**/task/**/fd"), "{paths:?}");
    assert!(!paths.contains(&"/etc/*"));
}

#[test]
fn container_profile_with_network() {
    let Some(bytes) =
        corpus("node-agent/head/tests/resources/containerprofile-fusioncore-network.yaml")
    else {
        return;
    };
    let item = one(&bytes, &with_digest());
    assert_eq!(item.container, "fusioncore-network");
    assert_eq!(
        item.profile.network.egress,
        [
            peer(
                None,
                Some("162.0.217.171/32"),
                Some(80),
                Some(Protocol::Tcp)
            ),
            peer(Some("fusioncore.ai"), None, Some(80), Some(Protocol::Tcp)),
        ]
    );
    assert!(item.profile.network.ingress.is_empty());
}

#[test]
fn container_profile_without_digest_names_the_container() {
    let Some(bytes) =
        corpus("node-agent/head/tests/resources/containerprofile-user-defined-network.yaml")
    else {
        return;
    };
    let err = import(&bytes, &ImportOptions::default()).unwrap_err();
    assert!(
        matches!(&err, ImportError::MissingDigest { container, image_id: None } if container == "curl-28-overlay")
    );
    assert!(err.to_string().contains("\"curl-28-overlay\""), "{err}");
    // `dns` and `dnsNames` with the same name give one peer.
    let p = one(&bytes, &with_digest()).profile;
    assert_eq!(
        p.dns_names().into_iter().collect::<Vec<_>>(),
        ["fusioncore.ai"]
    );
    assert_eq!(exec(&p, "/usr/bin/wget")[0].args, None);
}

#[test]
fn network_wildcards() {
    let dir = "node-agent/head/tests/resources/network-wildcards/";
    let Some(bytes) = corpus(&format!("{dir}02-literal-ipv6.yaml")) else {
        return;
    };
    let tcp443 = (Some(443), Some(Protocol::Tcp));
    let p = one(&bytes, &with_digest()).profile;
    assert_eq!(
        p.network.egress,
        [peer(None, Some("2001:db8::1/128"), tcp443.0, tcp443.1)]
    );

    let p = one(
        &corpus(&format!("{dir}05-any-ip-sentinel.yaml")).unwrap(),
        &with_digest(),
    )
    .profile;
    assert_eq!(
        p.network.egress,
        [peer(None, None, tcp443.0, tcp443.1)],
        "* is any peer"
    );

    let p = one(
        &corpus(&format!("{dir}11-dns-mid-ellipsis.yaml")).unwrap(),
        &with_digest(),
    )
    .profile;
    assert_eq!(
        p.network.egress,
        [peer(
            Some("svc.*.cluster.local"),
            None,
            Some(53),
            Some(Protocol::Udp)
        )]
    );

    let item = one(
        &corpus(&format!("{dir}12-dns-trailing-star.yaml")).unwrap(),
        &with_digest(),
    );
    assert_eq!(
        item.profile.dns_names().into_iter().collect::<Vec<_>>(),
        ["mycorp.com.*"]
    );
    assert!(warned(&item, "exactly one label"), "{:?}", item.warnings);

    let item = one(
        &corpus(&format!("{dir}13-dns-trailing-dot-normalisation.yaml")).unwrap(),
        &with_digest(),
    );
    assert_eq!(
        item.profile.network.egress,
        [peer(Some("api.stripe.com"), None, tcp443.0, tcp443.1)]
    );

    let item = one(
        &corpus(&format!("{dir}14-recursive-star-rejected.yaml")).unwrap(),
        &with_digest(),
    );
    assert!(item.profile.network.egress.is_empty());
    assert!(warned(&item, "**.example.com."), "{:?}", item.warnings);

    let item = one(
        &corpus(&format!("{dir}17-realistic-stripe-api.yaml")).unwrap(),
        &with_digest(),
    );
    let egress = &item.profile.network.egress;
    assert!(egress.contains(&peer(Some("*.stripe.com"), None, tcp443.0, tcp443.1)));
    assert!(egress.contains(&peer(None, Some("163.0.0.0/16"), tcp443.0, tcp443.1)));
    assert_eq!(egress.len(), 4);
    assert!(
        warned(
            &item,
            "egress[1] (cluster-dns): pods k8s-app=kube-dns in namespaces kubernetes.io/metadata.name=kube-system on UDP-53 (selectors cannot"
        ),
        "{:?}",
        item.warnings
    );

    let p = one(
        &corpus(&format!("{dir}15-egress-and-ingress.yaml")).unwrap(),
        &with_digest(),
    )
    .profile;
    assert_eq!(
        p.network.ingress,
        [peer(
            None,
            Some("192.168.0.0/16"),
            Some(8080),
            Some(Protocol::Tcp)
        )]
    );
}

#[test]
fn multi_document_yaml() {
    let Some(bytes) = corpus(
        "node-agent/head/tests/resources/network-wildcards/20-multi-container-mixed-wildcards.yaml",
    ) else {
        return;
    };
    let err = import(&bytes, &with_digest()).unwrap_err();
    assert!(
        matches!(&err, ImportError::AmbiguousDigest { containers } if containers.len() == 2),
        "{err}"
    );
    let err = import(&bytes, &select("nope")).unwrap_err();
    assert!(
        err.to_string()
            .contains("nw-20-multi-container-frontend, nw-20-multi-container-sidecar"),
        "{err}"
    );
    let p = one(&bytes, &select("nw-20-multi-container-sidecar")).profile;
    assert_eq!(
        p.network.ingress,
        [peer(
            None,
            Some("10.244.0.0/16"),
            Some(9090),
            Some(Protocol::Tcp)
        )]
    );
    assert_eq!(p.network.egress.len(), 4, "two ranges times two ports");
}

#[test]
fn exec_argument_wildcards() {
    let Some(bytes) =
        corpus("node-agent/head/tests/resources/containerprofile-exec-arg-wildcards.yaml")
    else {
        return;
    };
    let item = one(&bytes, &with_digest());
    let p = &item.profile;
    let curl: Vec<_> = exec(p, "/usr/bin/curl")
        .into_iter()
        .map(|e| e.args.clone())
        .collect();
    assert!(curl.contains(&args(&["-s", "*"])), "{curl:?}");
    assert!(curl.contains(&args(&[
        "-s",
        "*",
        "file:///etc/hosts",
        "file:///etc/hostname"
    ])));
    assert_eq!(exec(p, "/bin/sleep")[0].args, None, "⋯⋯ is any arguments");
    assert_eq!(exec(p, "/bin/sh")[0].args, None);
    assert!(
        exec(p, "/bin/echo")
            .iter()
            .any(|e| e.args == args(&["star", "*"]))
    );
    // busybox applets: argv[0] is not the path, the lists are not sorted.
    assert!(
        exec(p, "/bin/busybox")
            .iter()
            .any(|e| e.args == args(&["star", "*"]))
    );
    assert!(warned(&item, "literal argument"));
    assert!(!warned(&item, "sorted"));
}

#[test]
fn grouped_container_profile() {
    let Some(bytes) = corpus("node-agent/head/tests/resources/multisubtype-cp.yaml") else {
        return;
    };
    let err = import(
        &bytes,
        &ImportOptions {
            image_digest: None,
            container: Some("x".into()),
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("app, setup"), "{err}");
    let p = one(&bytes, &select("setup")).profile;
    assert_eq!(
        exec(&p, "/bin/sh")[0].args,
        args(&["-c", "sleep 100; /usr/bin/id"])
    );
    assert_eq!(exec(&p, "/usr/bin/sleep")[0].args, None);
}

#[test]
fn storage_container_profile_p1() {
    let Some(bytes) = corpus("storage/pkg/registry/file/testdata/p1.json") else {
        return;
    };
    let item = one(&bytes, &ImportOptions::default());
    let p = &item.profile;
    assert_eq!(item.container, "coredns");
    assert_eq!(
        p.image.digest,
        "sha256:ead0a4a53df89fd173874b46093b6e62d8c72967bbf606d672c9e8c9b601a4fc"
    );
    assert_eq!(
        p.image.reference.as_deref(),
        Some("registry.k8s.io/coredns/coredns:v1.10.1")
    );
    assert!(warned(&item, "image config digest"));
    assert!(p.opens.iter().any(|o| o.path == "/proc/*/fd"));
    assert!(
        p.opens
            .iter()
            .any(|o| o.path == "/etc/coredns/..2025_06_24_10_28_00.1936584358/Corefile")
    );
    assert!(p.syscalls.contains(&"epoll_pwait".to_string()));
    assert!(p.network.ingress.contains(&peer(
        None,
        Some("10.244.0.1/32"),
        Some(8181),
        Some(Protocol::Tcp)
    )));
    assert!(warned(&item, "HTTP endpoint"));
    assert_eq!(p.learning.completeness, Completeness::Partial);
    assert_eq!(
        p.learning.start.unwrap().to_string(),
        "2025-06-24T10:29:46Z"
    );
}

#[test]
fn storage_container_profile_p8() {
    let Some(bytes) = corpus("storage/pkg/registry/file/testdata/p8.json") else {
        return;
    };
    let item = one(&bytes, &ImportOptions::default());
    let p = &item.profile;
    assert_eq!(item.container, "server");
    assert_eq!(
        p.image.digest,
        "sha256:37b48b077af9130a6bd3b2fcb6d473e89eafc488262256f38fd663e890133af8"
    );
    assert!(!warned(&item, "config digest"));
    assert_eq!(p.learning.completeness, Completeness::Complete);
    assert!(p.capabilities.contains(&"NET_ADMIN".to_string()));
    assert_eq!(exec(p, "/bin/uname")[0].args, args(&[]));
    assert_eq!(
        exec(p, "/usr/bin/basename")[0].args,
        args(&["/app/build/install/hipstershop/bin/AdService"])
    );
    assert!(p.network.egress.contains(&peer(
        None,
        Some("169.254.169.254/32"),
        Some(80),
        Some(Protocol::Tcp)
    )));
}

#[test]
fn storage_gob_application_profile() {
    let Some(bytes) = corpus(
        "storage/pkg/registry/file/testdata/data.zip.decoded/applicationprofiles/default/default-replicaset-nginx-748c667d99-cf81-0278.json",
    ) else {
        return;
    };
    let err = import(&bytes, &ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("\"nginx\""), "{err}");
    let item = one(&bytes, &with_digest());
    let p = &item.profile;
    assert_eq!(item.container, "nginx");
    assert_eq!(
        p.learning.start.unwrap().to_string(),
        "2023-12-05T15:28:53Z"
    );
    assert_eq!(p.learning.completeness, Completeness::Partial);
    assert_eq!(
        p.capabilities,
        ["CHOWN", "NET_BIND_SERVICE", "SETGID", "SETUID"]
    );
    assert_eq!(exec(p, "/usr/bin/sort")[0].args, args(&["-V"]));
    assert_eq!(exec(p, "/usr/bin/md5sum")[0].args, None);
    assert!(p.opens.iter().any(|o| o.path == "/"));
    assert!(
        warned(&item, "dropped 1 open(s): \"\" (empty path)"),
        "{:?}",
        item.warnings
    );
    assert_eq!(p.opens.len(), 40);
}

#[test]
fn whole_storage_corpus_imports() {
    let Some(_) = corpus("README.md") else {
        return;
    };
    let base = Path::new(CORPUS).join("storage/pkg/registry/file/testdata");
    let mut files = Vec::new();
    for dir in [
        "data.zip.decoded/applicationprofiles",
        "data.zip.decoded/networkneighborses",
    ] {
        for ns in std::fs::read_dir(base.join(dir)).unwrap() {
            for f in std::fs::read_dir(ns.unwrap().path()).unwrap() {
                files.push(f.unwrap().path());
            }
        }
    }
    for i in 1..=12 {
        files.push(base.join(format!("p{i}.json")));
    }
    assert_eq!(files.len(), 32);
    let mut opens = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let imported = import(&bytes, &ImportOptions::default())
            .or_else(|_| import(&bytes, &with_digest()))
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for item in imported {
            assert!(validate(&item.profile).is_empty());
            opens += item.profile.opens.len();
        }
    }
    assert!(opens > 2800, "{opens}");
    let gadget = corpus("storage/pkg/registry/file/testdata/data.zip.decoded/applicationprofiles/gadget/gadget-daemonset-gadget-0d7c-fd3c.json").unwrap();
    let p = one(&gadget, &with_digest()).profile;
    assert!(p.capabilities.contains(&"BPF".to_string()));
    assert!(p.opens.len() > 2000);
}
