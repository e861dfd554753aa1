//! Loading the kernel programs (aya) and reading their ring buffer.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aya::maps::{HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{RawTracePoint, TracePoint};
use aya::{Ebpf, EbpfLoader};
use imprint_agent_ebpf::{
    DEDUP, DEDUP_KEY, DEDUPED, DROPS, DROPS_BY_CGROUP, Header, OBJECT, RAW_TRACEPOINTS,
    RING_BUFFER, Record, TRACEPOINTS, decode,
};
use rand_core::{OsRng, RngCore};

/// Why the sensor could not start.
#[derive(Debug, thiserror::Error)]
pub enum SensorError {
    /// The binary was built without clang: no kernel programs inside.
    #[error(
        "this imprint-agent was built without its BPF object (clang-19 was not found at build time)"
    )]
    NoObject,
    /// tracefs is not mounted.
    #[error(
        "tracefs is not mounted at /sys/kernel/tracing: mount -t tracefs tracefs /sys/kernel/tracing"
    )]
    NoTracefs,
    /// The kernel refused the object or a program.
    #[error("loading the BPF programs: {0}")]
    Load(String),
    /// A required tracepoint could not be attached.
    #[error("attaching {program} to {category}/{name}: {reason}")]
    Attach {
        /// The program.
        program: String,
        /// Its category.
        category: String,
        /// Its tracepoint.
        name: String,
        /// Why (shown in the message, so not also a `source`).
        reason: Box<AttachError>,
    },
}

/// Why one program could not be loaded and attached.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The kernel has no tracepoint of that name.
    #[error("the kernel has no such tracepoint")]
    NoTracepoint,
    /// The BPF object has no program of that name.
    #[error("not in the object")]
    NotInObject,
    /// The program is not of the kind its table says.
    #[error("{0}")]
    WrongKind(aya::programs::ProgramError),
    /// The kernel refused the program (the verifier's log ends the message).
    #[error("{}", verifier_tail(.0))]
    Load(aya::programs::ProgramError),
    /// The program loaded but could not be attached.
    #[error("{}", with_sources(.0))]
    Attach(aya::programs::ProgramError),
}

/// Programs without which learning means little: the sensor refuses to run
/// without them. The others are attached where the kernel has their tracepoint.
const REQUIRED: [&str; 2] = ["on_exec", "on_sys_enter"];

/// The end of a program-load error: the verifier's log is long, its end says why.
fn verifier_tail(e: &aya::programs::ProgramError) -> String {
    let text = format!("{e:#}");
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(12)..].join("\n")
}

/// An error with its causes.
fn with_sources(e: &dyn std::error::Error) -> String {
    let mut m = e.to_string();
    let mut s = e.source();
    while let Some(c) = s {
        m.push_str(&format!(": {c}"));
        s = c.source();
    }
    m
}

/// The loaded, attached sensor.
pub struct Sensor {
    ebpf: Ebpf,
    dedup_key: [u64; 2],
    /// Programs attached.
    pub attached: Vec<&'static str>,
    /// Programs skipped: the kernel lacks their tracepoint.
    pub skipped: Vec<&'static str>,
}

fn per_cpu_total(ebpf: &Ebpf, name: &str) -> u64 {
    let Some(map) = ebpf.map(name) else { return 0 };
    let Ok(array) = PerCpuArray::<_, u64>::try_from(map) else {
        return 0;
    };
    (0..32u32)
        .filter_map(|i| array.get(&i, 0).ok())
        .map(|values| values.iter().sum::<u64>())
        .sum()
}

impl Sensor {
    /// Loads the object and attaches every program whose tracepoint exists.
    pub fn start() -> Result<Sensor, SensorError> {
        let object = OBJECT.ok_or(SensorError::NoObject)?;
        let events = Path::new("/sys/kernel/tracing/events");
        if !events.is_dir() {
            return Err(SensorError::NoTracefs);
        }
        // A new random key each load: nobody can craft names that collide in
        // dedup without it, and it never leaves this process.
        let dedup_key = [OsRng.next_u64(), OsRng.next_u64()];
        let mut ebpf = EbpfLoader::new()
            .override_global(DEDUP_KEY, &dedup_key, true)
            .load(object)
            .map_err(|e| SensorError::Load(e.to_string()))?;
        let mut attached = Vec::new();
        let mut skipped = Vec::new();
        // Programs to leave out (comma-separated names), to measure what each costs.
        let leave_out = std::env::var("IMPRINT_SENSOR_SKIP").unwrap_or_default();
        for &(program, category, name) in TRACEPOINTS {
            if leave_out.split(',').any(|p| p == program) {
                skipped.push(program);
                continue;
            }
            if !events.join(category).join(name).is_dir() {
                if REQUIRED.contains(&program) {
                    return Err(SensorError::Attach {
                        program: program.into(),
                        category: category.into(),
                        name: name.into(),
                        reason: Box::new(AttachError::NoTracepoint),
                    });
                }
                skipped.push(program);
                continue;
            }
            let attach = |ebpf: &mut Ebpf| -> Result<(), AttachError> {
                let tp: &mut TracePoint = ebpf
                    .program_mut(program)
                    .ok_or(AttachError::NotInObject)?
                    .try_into()
                    .map_err(AttachError::WrongKind)?;
                tp.load().map_err(AttachError::Load)?;
                tp.attach(category, name).map_err(AttachError::Attach)?;
                Ok(())
            };
            attach(&mut ebpf).map_err(|reason| SensorError::Attach {
                program: program.into(),
                category: category.into(),
                name: name.into(),
                reason: Box::new(reason),
            })?;
            attached.push(program);
        }
        for &(program, name) in RAW_TRACEPOINTS {
            if leave_out.split(',').any(|p| p == program) {
                skipped.push(program);
                continue;
            }
            let attach = |ebpf: &mut Ebpf| -> Result<(), AttachError> {
                let tp: &mut RawTracePoint = ebpf
                    .program_mut(program)
                    .ok_or(AttachError::NotInObject)?
                    .try_into()
                    .map_err(AttachError::WrongKind)?;
                tp.load().map_err(AttachError::Load)?;
                tp.attach(name).map_err(AttachError::Attach)?;
                Ok(())
            };
            attach(&mut ebpf).map_err(|reason| SensorError::Attach {
                program: program.into(),
                category: "raw_tracepoint".into(),
                name: name.into(),
                reason: Box::new(reason),
            })?;
            attached.push(program);
        }
        Ok(Sensor {
            ebpf,
            dedup_key,
            attached,
            skipped,
        })
    }

    /// Records lost because the ring buffer was full.
    pub fn drops(&self) -> u64 {
        per_cpu_total(&self.ebpf, DROPS)
    }

    /// Records suppressed in the kernel by dedup.
    pub fn deduped(&self) -> u64 {
        per_cpu_total(&self.ebpf, DEDUPED)
    }

    /// Records lost to a full ring buffer since the last call, by cgroup id
    /// (the counts are taken out of the kernel's map).
    pub fn take_drops_by_cgroup(&mut self) -> Vec<(u64, u64)> {
        let Some(map) = self.ebpf.map_mut(DROPS_BY_CGROUP) else {
            return Vec::new();
        };
        let Ok(mut drops) = BpfHashMap::<_, u64, u64>::try_from(map) else {
            return Vec::new();
        };
        let found: Vec<(u64, u64)> = drops.iter().filter_map(Result::ok).collect();
        for (cgroup, _) in &found {
            let _ = drops.remove(cgroup);
        }
        found
    }

    /// The key of the in-kernel dedup hash (SipHash-2-4), for tests that check
    /// the kernel's hashing. Never logged.
    pub fn dedup_key(&self) -> [u64; 2] {
        self.dedup_key
    }

    /// The hashes in the dedup map now, with their event type: for tests.
    pub fn dedup_hashes(&self) -> Vec<(u32, u64)> {
        let Some(map) = self.ebpf.map(DEDUP) else {
            return Vec::new();
        };
        let Ok(dedup) = BpfHashMap::<_, [u8; 48], u8>::try_from(map) else {
            return Vec::new();
        };
        dedup
            .keys()
            .filter_map(Result::ok)
            .map(|k| {
                let hash = u64::from_le_bytes(k[16..24].try_into().expect("8 bytes"));
                let kind = u32::from_le_bytes(k[40..44].try_into().expect("4 bytes"));
                (kind, hash)
            })
            .collect()
    }

    /// Takes the ring buffer, to be read by [`read_ring`] on its own thread.
    pub fn take_ring(&mut self) -> Result<RingBuf<MapData>, SensorError> {
        let map = self
            .ebpf
            .take_map(RING_BUFFER)
            .ok_or_else(|| SensorError::Load("no ring buffer in the object".into()))?;
        RingBuf::try_from(map).map_err(|e| SensorError::Load(e.to_string()))
    }
}

/// Counts of what the reader saw.
#[derive(Debug, Default)]
pub struct ReadStats {
    /// Records read.
    pub records: u64,
    /// Records that did not decode.
    pub malformed: u64,
}

/// Reads the ring buffer until `stop`, handing each decoded record to `sink`.
/// Wake-ups are batched in the kernel, so this also polls every `interval`.
pub fn read_ring(
    mut ring: RingBuf<MapData>,
    stop: Arc<AtomicBool>,
    interval: Duration,
    mut sink: impl FnMut(Header, Record),
) -> ReadStats {
    use std::os::fd::AsFd;
    let mut stats = ReadStats::default();
    let timeout = rustix::event::Timespec {
        tv_sec: interval.as_secs() as i64,
        tv_nsec: interval.subsec_nanos() as i64,
    };
    while !stop.load(Ordering::Relaxed) {
        while let Some(item) = ring.next() {
            stats.records += 1;
            match decode(&item) {
                Ok((header, record)) => sink(header, record),
                Err(_) => stats.malformed += 1,
            }
        }
        let fd = ring.as_fd();
        let mut fds = [rustix::event::PollFd::new(
            &fd,
            rustix::event::PollFlags::IN,
        )];
        let _ = rustix::event::poll(&mut fds, Some(&timeout));
    }
    // What is left when asked to stop.
    while let Some(item) = ring.next() {
        stats.records += 1;
        match decode(&item) {
            Ok((header, record)) => sink(header, record),
            Err(_) => stats.malformed += 1,
        }
    }
    stats
}
