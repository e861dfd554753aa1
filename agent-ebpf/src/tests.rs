use super::*;

fn header(kind: u32, size: usize) -> Vec<u8> {
    let mut b = vec![0u8; size];
    b[0..4].copy_from_slice(&kind.to_le_bytes());
    b[4..8].copy_from_slice(&42u32.to_le_bytes());
    b[8..12].copy_from_slice(&43u32.to_le_bytes());
    b[16..24].copy_from_slice(&7777u64.to_le_bytes());
    b[24..32].copy_from_slice(&123u64.to_le_bytes());
    b[32..35].copy_from_slice(b"cat");
    b
}

#[test]
fn exec_records_carry_filename_argv_parent_and_sockets() {
    let mut b = header(1, sizes::EXEC);
    let body = HEADER_LEN;
    b[body..body + 4].copy_from_slice(&1u32.to_le_bytes());
    b[body + 4..body + 8].copy_from_slice(&2u32.to_le_bytes());
    let args = b"cat\0/etc/passwd\0";
    b[body + 8..body + 12].copy_from_slice(&(args.len() as u32).to_le_bytes());
    b[body + 16..body + 24].copy_from_slice(b"/bin/cat");
    let at = body + 16 + 256;
    b[at..at + args.len()].copy_from_slice(args);
    let exe = body + 16 + 256 + 512;
    b[exe..exe + 12].copy_from_slice(b"/bin/busybox");
    let (h, r) = decode(&b).unwrap();
    assert_eq!(
        (h.pid, h.tid, h.cgroup_id, h.comm.as_str()),
        (42, 43, 7777, "cat")
    );
    assert_eq!(
        r,
        Record::Exec {
            filename: "/bin/cat".into(),
            exe: "/bin/busybox".into(),
            argv: vec!["cat".into(), "/etc/passwd".into()],
            parent_pid: 1,
            stdin_socket: false,
            stdout_socket: true,
        }
    );
}

#[test]
fn network_records_decode_both_families() {
    let mut b = header(7, sizes::NET);
    let body = HEADER_LEN;
    b[body..body + 2].copy_from_slice(&2u16.to_le_bytes());
    b[body + 2..body + 4].copy_from_slice(&8080u16.to_le_bytes());
    b[body + 4..body + 8].copy_from_slice(&1u32.to_le_bytes());
    b[body + 8..body + 12].copy_from_slice(&[127, 0, 0, 1]);
    let (_, r) = decode(&b).unwrap();
    assert_eq!(
        r,
        Record::Connect(
            Endpoint {
                ip: "127.0.0.1".parse().unwrap(),
                port: 8080
            },
            SocketType::Stream
        )
    );
    let mut b = header(9, sizes::NET);
    b[body..body + 2].copy_from_slice(&10u16.to_le_bytes());
    b[body + 2..body + 4].copy_from_slice(&443u16.to_le_bytes());
    b[body + 8 + 15] = 1;
    let (_, r) = decode(&b).unwrap();
    assert_eq!(
        r,
        Record::Bind(
            Endpoint {
                ip: "::1".parse().unwrap(),
                port: 443
            },
            SocketType::Other(0)
        )
    );
}

#[test]
fn paths_and_values_decode() {
    let mut b = header(17, sizes::PATH);
    let body = HEADER_LEN;
    b[body + 8..body + 12].copy_from_slice(b"/tmp");
    b[body + 8 + 256..body + 8 + 256 + 4].copy_from_slice(b"/x/y");
    assert_eq!(
        decode(&b).unwrap().1,
        Record::Symlink {
            target: "/tmp".into(),
            link: "/x/y".into()
        }
    );
    let mut b = header(6, sizes::VALUE);
    b[body..body + 8].copy_from_slice(&21u64.to_le_bytes());
    b[body + 8..body + 16].copy_from_slice(&(-1i64 as u64).to_le_bytes());
    assert_eq!(
        decode(&b).unwrap().1,
        Record::Capability {
            cap: 21,
            verdict: -1
        }
    );
}

#[test]
fn short_and_unknown_records_are_errors() {
    assert!(matches!(decode(&[0u8; 10]), Err(DecodeError::Short { .. })));
    let b = header(1, sizes::EXEC - 1);
    assert!(matches!(
        decode(&b),
        Err(DecodeError::Short { kind: 1, .. })
    ));
    let b = header(99, 200);
    assert_eq!(decode(&b), Err(DecodeError::UnknownType(99)));
}

#[test]
fn the_object_is_built_where_clang_is() {
    // CI installs clang-19; a build without it must say so rather than pass silently.
    if std::process::Command::new("clang-19")
        .arg("--version")
        .output()
        .is_ok()
    {
        assert!(
            OBJECT.is_some(),
            "clang-19 is installed but no object was built"
        );
        assert!(OBJECT.unwrap().starts_with(b"\x7fELF"));
    } else {
        let why = "no clang-19: the crate was built without its BPF object";
        if std::env::var("IMPRINT_NO_SKIP").as_deref() == Ok("1") {
            panic!("{why} (IMPRINT_NO_SKIP=1: a skipped real-component test fails)");
        }
        eprintln!("skipped: {why}");
    }
}

#[test]
fn open_records_carry_the_whole_path_and_how_it_was_resolved() {
    let mut b = header(4, sizes::PATH);
    b[12..16].copy_from_slice(&4026531836u32.to_le_bytes());
    let body = HEADER_LEN;
    b[body..body + 4].copy_from_slice(&0o101u32.to_le_bytes());
    b[body + 4..body + 8].copy_from_slice(&(OPEN_RELATIVE | OPEN_TRUNCATED).to_le_bytes());
    // A path longer than PATH_LEN runs on into the second half of the buffer.
    let long = format!("/srv/{}", "d/".repeat(200));
    b[body + 8..body + 8 + long.len()].copy_from_slice(long.as_bytes());
    let (h, r) = decode(&b).unwrap();
    assert_eq!(h.pid_ns, 4026531836);
    assert_eq!(
        r,
        Record::Open {
            path: long,
            flags: 0o101,
            relative: true,
            truncated: true,
        }
    );
    // One byte short of its size is refused, not read past.
    assert_eq!(
        decode(&b[..sizes::PATH - 1]),
        Err(DecodeError::Short {
            kind: 4,
            got: sizes::PATH - 1,
            want: sizes::PATH
        })
    );
}
