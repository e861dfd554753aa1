//! The support itself against a real `docker-registry`: a pushed test image is
//! served back by its digest, directly and through the fault proxy.

use std::io::{Read, Write};
use std::net::TcpStream;

use imprint_test_support::{Fault, FaultProxy, TestImage, TestRegistry, push_image};

/// `GET path` on its own connection; the whole response.
fn get(addr: &str, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {}\r\nConnection: close\r\n\r\n",
        TestImage::MANIFEST_MEDIA_TYPE
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    response
}

#[test]
fn a_pushed_image_is_served_by_its_digest_directly_and_through_the_proxy() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let proxy = FaultProxy::start(&reg.addr, |_, _| Fault::Forward);
    for (addr, repo) in [(&reg.addr, "direct/app"), (&proxy.addr, "proxied/app")] {
        let digest = push_image(addr, repo, "1.0", "arm64");
        let expected = TestImage::new(repo, "arm64");
        assert_eq!(digest, expected.digest);
        let response = get(&reg.addr, &format!("/v2/{repo}/manifests/{digest}"));
        assert!(
            response.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&response)
        );
        assert!(response.ends_with(&expected.manifest));
    }
    // Each request the proxy passed on was recorded; a push is five of them.
    assert_eq!(proxy.heads().len(), 5, "{:?}", proxy.heads());
}

#[test]
fn the_proxy_injects_the_fault_its_rule_names() {
    let Some(reg) = TestRegistry::start() else {
        return;
    };
    let proxy = FaultProxy::start(&reg.addr, |line, n| {
        if line.starts_with("GET /v2/ ") && n == 0 {
            Fault::Status(503)
        } else {
            Fault::Forward
        }
    });
    assert!(get(&proxy.addr, "/v2/").starts_with(b"HTTP/1.1 503 Injected"));
    assert!(get(&proxy.addr, "/v2/").starts_with(b"HTTP/1.1 200"));
}
