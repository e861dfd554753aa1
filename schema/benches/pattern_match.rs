//! Path-pattern lookups: the compiled trie against a linear scan of pre-parsed
//! patterns, measured in the same run.
//!
//! `cargo bench -p imprint-schema --bench pattern_match`
//!
//! The pattern set looks like a real profile's opens: 2,000 patterns, mostly literal
//! paths under a few hundred directories, some with `*` and `**`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use imprint_schema::pattern::{PatternSet, Segment, matches_parsed, parse};

fn patterns(n: usize) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    let roots = ["usr/lib", "usr/share", "etc", "app", "var/lib", "opt/tool"];
    let mut i = 0;
    while out.len() < n {
        let root = roots[i % roots.len()];
        let p = match i % 10 {
            0 => format!("/{root}/pkg{}/*", i / 10),
            1 => format!("/{root}/pkg{}/**/data", i / 10),
            _ => format!("/{root}/pkg{}/file{}.conf", i / 10, i % 7),
        };
        out.push(p);
        i += 1;
    }
    out.push("/proc/*/stat".into());
    out
}

fn lookups(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 4 {
            0 => format!("/usr/lib/pkg{}/file{}.conf", i % 180, i % 7),
            1 => format!("/proc/{}/stat", i),
            2 => format!("/app/pkg{}/a/b/data", i % 200),
            _ => format!("/home/user/missing{i}"),
        })
        .collect()
}

/// The baseline: every pattern parsed once, then each lookup tries them in turn.
fn linear_match(parsed: &[Vec<Segment<'_>>], path: &str) -> bool {
    parsed.iter().any(|p| matches_parsed(p, path))
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("pattern_lookup");
    for n in [100usize, 2_000] {
        let pats = patterns(n);
        let set = PatternSet::build(pats.iter().map(String::as_str)).unwrap();
        let parsed: Vec<Vec<Segment<'_>>> = pats.iter().map(|p| parse(p).unwrap()).collect();
        let paths = lookups(1_000);
        // Both must agree, or the comparison means nothing.
        for p in &paths {
            assert_eq!(set.is_match(p), linear_match(&parsed, p), "{p}");
        }
        group.throughput(Throughput::Elements(paths.len() as u64));
        group.bench_with_input(BenchmarkId::new("trie", n), &paths, |b, paths| {
            b.iter(|| paths.iter().filter(|p| set.is_match(p)).count())
        });
        group.bench_with_input(BenchmarkId::new("linear_scan", n), &paths, |b, paths| {
            b.iter(|| {
                paths
                    .iter()
                    .filter(|p| linear_match(black_box(&parsed), p))
                    .count()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
