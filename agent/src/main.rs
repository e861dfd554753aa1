//! `imprint-agent`: the node agent.
//!
//! `--mode learn` attaches the eBPF sensor, attributes each event to a container
//! and its image digest, and writes one profile per image digest once its learning
//! period has passed. Enforcement (`--mode enforce`) arrives with its issue.

use imprint_agent::{attribution, learn, metrics, sensor, tracker};

mod enforce;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};
use jiff::{SignedDuration, Timestamp};

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Learn profiles from what containers do.
    Learn,
    /// Enforce verified profiles and run the behaviour rules; send alerts.
    Enforce,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum RuntimeChoice {
    /// podman, then crictl.
    Auto,
    /// podman only.
    Podman,
    /// crictl only (containerd, CRI-O).
    Cri,
}

/// The imprint node agent.
#[derive(Parser, Debug)]
#[command(version, about)]
pub(crate) struct Args {
    /// What to do.
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// A configuration file (YAML, `kind: AgentConfig`); flags given win over it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// How long each image is learned, from when it is first seen (`30s`, `15m`, `24h`).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    learning_period: SignedDuration,
    /// Learn: where finished profiles are written (`sha256-<hex>.yaml`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Learn: exit (0) once every image seen has been learned and its profile
    /// written, as a CI job's learning run wants.
    #[arg(long)]
    exit_when_learned: bool,
    /// Enforce: a trusted public key (cosign.pub; repeatable). Profiles must be
    /// signed and attested by one of them.
    #[arg(long = "key")]
    keys: Vec<PathBuf>,
    /// Enforce: a verification policy file (instead of --key).
    #[arg(long, conflicts_with = "keys")]
    policy: Option<PathBuf>,
    /// Enforce: also look for profiles in this repository (repeatable).
    #[arg(long = "profile-repo")]
    profile_repos: Vec<String>,
    /// Enforce: a pinned profile artifact, `oci://registry/repo@sha256:…`
    /// (repeatable); verified like any other, used for the digest it names.
    #[arg(long = "profile-ref")]
    profile_refs: Vec<String>,
    /// Enforce: behaviour rule files, after the built-in ones (repeatable).
    #[arg(long = "rules")]
    rules: Vec<PathBuf>,
    /// Enforce: send alerts to this Alertmanager (`http://host:9093`).
    #[arg(long)]
    alertmanager_url: Option<String>,
    /// Enforce: POST alert batches (JSON) to this URL.
    #[arg(long)]
    webhook_url: Option<String>,
    /// Enforce: a webhook header, `Name: value` (repeatable).
    #[arg(long = "webhook-header")]
    webhook_headers: Vec<String>,
    /// Enforce: send RFC 5424 syslog to `udp://host:port`, `tcp://host:port` or
    /// `tls://host:port` (RFC 5425).
    #[arg(long)]
    syslog_url: Option<String>,
    /// Enforce: CA certificates (PEM) a `tls://` syslog receiver must chain to
    /// (default: the system's roots).
    #[arg(long)]
    syslog_ca: Option<PathBuf>,
    /// Enforce: a client certificate (PEM) for a `tls://` syslog receiver that
    /// authenticates senders; with --syslog-key.
    #[arg(long)]
    syslog_cert: Option<PathBuf>,
    /// Enforce: the private key (PEM) of --syslog-cert.
    #[arg(long)]
    syslog_key: Option<PathBuf>,
    /// Enforce: print alerts as JSON lines on stdout.
    #[arg(long)]
    stdout: bool,
    /// Enforce: how often profiles are looked up again, in seconds.
    #[arg(long, default_value_t = 30)]
    refresh: u64,
    /// Enforce: seconds related alerts are grouped, and a repeat is not sent again.
    #[arg(long, default_value_t = 60)]
    incident_window: i64,
    /// Where learning state is kept, so a restart continues learning.
    #[arg(long, default_value = "/var/lib/imprint")]
    state_dir: PathBuf,
    /// Also write every event to this file, in the documented JSON-lines format.
    #[arg(long)]
    events_out: Option<PathBuf>,
    /// Also report events from processes outside containers (to --events-out).
    #[arg(long)]
    include_host: bool,
    /// Which container runtime to ask for a container's image.
    #[arg(long, value_enum, default_value_t = RuntimeChoice::Auto)]
    runtime: RuntimeChoice,
    /// A Kubernetes pod list (JSON, as `kubectl get pods -o json` prints it) naming
    /// each container's image digest; read at start.
    #[arg(long)]
    pod_statuses: Option<PathBuf>,
    /// The node name written in events, and whose pods --kubernetes watches
    /// (default: the host name).
    #[arg(long)]
    node: Option<String>,
    /// Ask the Kubernetes API (in-cluster service account, or KUBECONFIG): watch
    /// this node's pods for each container's image digest, namespace and pod,
    /// and (enforce) `Profile` objects as delivered profiles.
    #[arg(long)]
    kubernetes: bool,
    /// Enforce: a directory of delivered `Profile` documents (Flux's extracted
    /// layer, a ConfigMap volume); each pins the content the agent enforces for
    /// its digest, once a signed artifact with that content verifies.
    #[arg(long)]
    profile_dir: Option<PathBuf>,
    /// Serve Prometheus metrics (`/metrics`) and `/healthz` on this address.
    #[arg(long)]
    metrics_addr: Option<std::net::SocketAddr>,
    /// How often state is persisted, in seconds.
    #[arg(long, default_value_t = 5)]
    persist_every: u64,
}

fn parse_duration(s: &str) -> Result<SignedDuration, String> {
    let d: SignedDuration = s
        .parse()
        .map_err(|e| format!("{s:?} is not a duration such as 30s or 24h: {e}"))?;
    if d.is_negative() || d.is_zero() {
        return Err(format!("{s:?}: the duration must be positive"));
    }
    Ok(d)
}

fn write_profile(
    dir: &std::path::Path,
    profile: &imprint_schema::Profile,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = format!("{}.yaml", profile.image.digest.replace(':', "-"));
    let path = dir.join(name);
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    std::fs::write(&tmp, imprint_schema::to_yaml(profile))
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// What both modes run: attribution, the sensor, and the thread reading it.
struct Sensing {
    tracker: tracker::Tracker,
    sensor: sensor::Sensor,
    rx: std::sync::mpsc::Receiver<(imprint_agent_ebpf::Header, imprint_agent_ebpf::Record)>,
    reader: std::thread::JoinHandle<sensor::ReadStats>,
    clock: tracker::Clock,
}

/// The events of the next turn of a mode's loop: held events released by now,
/// then those of the next record (waiting up to `wait`). When the sensor is gone,
/// `stopping` is set; what was released is still returned.
fn next_events(
    tracker: &mut tracker::Tracker,
    rx: &std::sync::mpsc::Receiver<(imprint_agent_ebpf::Header, imprint_agent_ebpf::Record)>,
    clock: &tracker::Clock,
    wait: Duration,
    stopping: &mut bool,
) -> Vec<imprint_engine::Event> {
    let mut events = tracker.release_held(clock.now());
    match rx.recv_timeout(wait) {
        Ok((header, record)) => {
            let time = clock.wall(header.time_ns);
            events.extend(tracker.events(&header, &record, time));
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => *stopping = true,
    }
    events
}

/// The node's name: `--node`, or the host name.
fn node_name(args: &Args) -> Option<String> {
    args.node.clone().or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
    })
}

/// With `--kubernetes`: connects to the API and starts the watchers (this node's
/// pods; `Profile` objects into `deliveries` when given) on their own thread.
fn start_kubernetes(
    args: &Args,
    deliveries: Option<imprint_agent::delivered::SharedDeliveries>,
) -> anyhow::Result<Option<imprint_agent::kubernetes::SharedPods>> {
    use imprint_agent::kubernetes;
    if !args.kubernetes {
        return Ok(None);
    }
    let node = node_name(args).context("--kubernetes: no node name; give --node")?;
    let pods = kubernetes::SharedPods::default();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let watched = pods.clone();
    std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let _ = ready_tx.send(Err(anyhow::anyhow!("a tokio runtime: {e}")));
                return;
            }
        };
        runtime.block_on(async move {
            let client = match kube::Client::try_default().await {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(anyhow::anyhow!(
                        "no in-cluster service account or KUBECONFIG: {e}"
                    )));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let pods = kubernetes::watch_pods(client.clone(), node, watched);
            match deliveries {
                Some(d) => {
                    futures_util::future::join(pods, kubernetes::watch_profiles(client, d)).await;
                }
                None => pods.await,
            }
        });
    });
    ready_rx
        .recv()
        .context("--kubernetes: the API client thread ended")?
        .context("--kubernetes")?;
    Ok(Some(pods))
}

fn start_sensing(
    args: &Args,
    stop: &Arc<AtomicBool>,
    metrics: &Arc<metrics::Metrics>,
    doing: &str,
    cluster: Option<imprint_agent::kubernetes::SharedPods>,
) -> anyhow::Result<Sensing> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let cgroup_root = attribution::cgroup2_mount(&mountinfo)
        .context("no cgroup2 hierarchy is mounted (needed to tell containers apart)")?;
    let runtimes = match args.runtime {
        RuntimeChoice::Auto => vec![attribution::Runtime::Podman, attribution::Runtime::Cri],
        RuntimeChoice::Podman => vec![attribution::Runtime::Podman],
        RuntimeChoice::Cri => vec![attribution::Runtime::Cri],
    };
    let mut resolver = attribution::ImageResolver::new(runtimes);
    if let Some(path) = &args.pod_statuses {
        let json = std::fs::read(path)
            .with_context(|| format!("cannot read --pod-statuses {}", path.display()))?;
        resolver.learn(attribution::parse_pod_statuses(&json));
    }
    if let Some(pods) = cluster {
        resolver = resolver.with_cluster(pods);
    }
    let node = node_name(args);
    let tracker = tracker::Tracker::new(
        attribution::CgroupIndex::new(&cgroup_root),
        resolver,
        node,
        args.include_host,
    );
    let mut sensor = sensor::Sensor::start()?;
    let ring = sensor.take_ring()?;
    eprintln!(
        "imprint-agent: sensor attached ({} programs{}); {doing}, {} containers already running",
        sensor.attached.len(),
        if sensor.skipped.is_empty() {
            String::new()
        } else {
            format!("; no tracepoint for {}", sensor.skipped.join(", "))
        },
        tracker.preexisting(),
    );
    if let Some(addr) = args.metrics_addr {
        let listener = std::net::TcpListener::bind(addr)
            .with_context(|| format!("cannot listen on --metrics-addr {addr}"))?;
        let (m, s) = (metrics.clone(), stop.clone());
        std::thread::spawn(move || metrics::serve(listener, m, s));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1 << 16);
    let reader_stop = stop.clone();
    let reader_metrics = metrics.clone();
    let reader = std::thread::spawn(move || {
        sensor::read_ring(ring, reader_stop, Duration::from_millis(20), |h, r| {
            reader_metrics.records.fetch_add(1, Ordering::Relaxed);
            let _ = tx.send((h, r));
        })
    });
    metrics.ready.store(true, Ordering::Relaxed);
    Ok(Sensing {
        tracker,
        sensor,
        rx,
        reader,
        clock: tracker::Clock::new(),
    })
}

fn run(args: Args) -> anyhow::Result<()> {
    match args.mode {
        None => anyhow::bail!("no mode: give --mode learn|enforce, or mode: in --config"),
        Some(Mode::Enforce) => return enforce::run(args),
        Some(Mode::Learn) => {}
    }
    let out_dir = args
        .out
        .clone()
        .context("learn mode needs --out DIR (or learn.out in --config)")?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, stop.clone()).context("cannot handle signals")?;
    }
    let mut session = learn::LearnSession::new(args.learning_period);
    let (mut log, replayed, skipped) = learn::StateLog::open(&args.state_dir, |e| {
        session.observe(&e);
    })
    .with_context(|| format!("cannot open the state in {}", args.state_dir.display()))?;
    if replayed > 0 || skipped > 0 {
        eprintln!(
            "imprint-agent: continued from {} ({replayed} events, {skipped} unreadable lines skipped)",
            log.path().display()
        );
    }
    let mut events_out = match &args.events_out {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open --events-out {}", path.display()))?,
        )),
        None => None,
    };

    anyhow::ensure!(
        args.profile_dir.is_none(),
        "--profile-dir is for --mode enforce"
    );
    let cluster = start_kubernetes(&args, None)?;
    let metrics = Arc::new(metrics::Metrics::default());
    let Sensing {
        mut tracker,
        sensor,
        rx,
        reader,
        clock,
    } = start_sensing(
        &args,
        &stop,
        &metrics,
        &format!("learning for {:#} per image", args.learning_period),
        cluster,
    )?;

    let mut last_persist = Instant::now();
    let persist_every = Duration::from_secs(args.persist_every.max(1));
    loop {
        let mut stopping = stop.load(Ordering::Relaxed);
        let events = next_events(
            &mut tracker,
            &rx,
            &clock,
            Duration::from_millis(200),
            &mut stopping,
        );
        for event in events {
            if let Some(out) = events_out.as_mut() {
                serde_json::to_writer(&mut *out, &event)?;
                std::io::Write::write_all(out, b"\n")?;
            }
            if event.container_id != tracker::HOST && session.observe(&event) {
                metrics.events.fetch_add(1, Ordering::Relaxed);
                log.append(&event)?;
            }
        }
        let now = Timestamp::now();
        for profile in session.finish_due(now) {
            let path = write_profile(&out_dir, &profile)?;
            metrics.profiles_written.fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "imprint-agent: learned {} ({:?}) → {}",
                profile.image.digest,
                profile.learning.completeness,
                path.display()
            );
        }
        if args.exit_when_learned && session.learned() > 0 && session.learning() == 0 {
            eprintln!("imprint-agent: every image seen is learned (--exit-when-learned)");
            // As a signal would: the sensor's reader stops too.
            stop.store(true, Ordering::Relaxed);
            stopping = true;
        }
        if stopping || last_persist.elapsed() >= persist_every {
            log.flush()?;
            if let Some(out) = events_out.as_mut() {
                std::io::Write::flush(out)?;
            }
            for profile in session.snapshot(now) {
                write_profile(&args.state_dir.join("partial"), &profile)?;
            }
            metrics.observe_sensing(&sensor, &tracker);
            metrics
                .images_learning
                .store(session.learning() as u64, Ordering::Relaxed);
            last_persist = Instant::now();
        }
        if stopping {
            break;
        }
    }
    let stats = reader.join().unwrap_or_default();
    log.flush()?;
    eprintln!(
        "imprint-agent: stopped with {} images still learning; {} records read, {} malformed, {} lost to a full ring buffer, {} suppressed by in-kernel dedup; {}",
        session.learning(),
        stats.records,
        stats.malformed,
        sensor.drops(),
        sensor.deduped(),
        tracker.summary(),
    );
    Ok(())
}

/// Fills what the command line did not give from `--config`.
fn apply_config(args: &mut Args, matches: &clap::ArgMatches) -> anyhow::Result<()> {
    let Some(path) = args.config.clone() else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read --config {}", path.display()))?;
    let c = imprint_agent::config::AgentConfig::parse(&text, &path.display().to_string())?;
    let from_file =
        |id: &str| matches.value_source(id) != Some(clap::parser::ValueSource::CommandLine);
    macro_rules! fill {
        ($id:literal, $field:expr, $value:expr) => {
            if from_file($id)
                && let Some(v) = $value
            {
                $field = v;
            }
        };
    }
    fill!(
        "mode",
        args.mode,
        c.mode.as_deref().map(|m| Some(if m == "learn" {
            Mode::Learn
        } else {
            Mode::Enforce
        }))
    );
    fill!("state_dir", args.state_dir, c.state_dir.clone());
    fill!("kubernetes", args.kubernetes, c.kubernetes);
    fill!(
        "profile_dir",
        args.profile_dir,
        c.enforce.profile_dir.clone().map(Some)
    );
    fill!("metrics_addr", args.metrics_addr, c.metrics_addr.map(Some));
    fill!(
        "runtime",
        args.runtime,
        c.runtime.as_deref().map(|r| match r {
            "podman" => RuntimeChoice::Podman,
            "cri" => RuntimeChoice::Cri,
            _ => RuntimeChoice::Auto,
        })
    );
    fill!(
        "pod_statuses",
        args.pod_statuses,
        c.pod_statuses.clone().map(Some)
    );
    fill!("node", args.node, c.node.clone().map(Some));
    fill!("include_host", args.include_host, c.include_host);
    fill!(
        "learning_period",
        args.learning_period,
        c.learn
            .learning_period
            .as_deref()
            .and_then(|p| parse_duration(p).ok())
    );
    fill!("out", args.out, c.learn.out.clone().map(Some));
    fill!(
        "exit_when_learned",
        args.exit_when_learned,
        c.learn.exit_when_learned
    );
    fill!(
        "events_out",
        args.events_out,
        c.learn.events_out.clone().map(Some)
    );
    fill!(
        "keys",
        args.keys,
        (!c.enforce.keys.is_empty()).then(|| c.enforce.keys.clone())
    );
    fill!("policy", args.policy, c.enforce.policy.clone().map(Some));
    fill!(
        "profile_repos",
        args.profile_repos,
        (!c.enforce.profile_repos.is_empty()).then(|| c.enforce.profile_repos.clone())
    );
    fill!(
        "rules",
        args.rules,
        (!c.enforce.rules.is_empty()).then(|| c.enforce.rules.clone())
    );
    fill!(
        "profile_refs",
        args.profile_refs,
        (!c.enforce.profile_refs.is_empty()).then(|| c.enforce.profile_refs.clone())
    );
    fill!("refresh", args.refresh, c.enforce.refresh);
    fill!(
        "incident_window",
        args.incident_window,
        c.enforce.incident_window
    );
    fill!(
        "alertmanager_url",
        args.alertmanager_url,
        c.outputs.alertmanager.as_ref().map(|o| Some(o.url.clone()))
    );
    fill!(
        "webhook_url",
        args.webhook_url,
        c.outputs.webhook.as_ref().map(|o| Some(o.url.clone()))
    );
    fill!(
        "webhook_headers",
        args.webhook_headers,
        c.outputs
            .webhook
            .as_ref()
            .map(|o| { o.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect() })
    );
    fill!(
        "syslog_url",
        args.syslog_url,
        c.outputs.syslog.as_ref().map(|o| Some(o.url.clone()))
    );
    let syslog = c.outputs.syslog.as_ref();
    fill!("syslog_ca", args.syslog_ca, syslog.map(|o| o.ca.clone()));
    fill!(
        "syslog_cert",
        args.syslog_cert,
        syslog.map(|o| o.cert.clone())
    );
    fill!("syslog_key", args.syslog_key, syslog.map(|o| o.key.clone()));
    fill!("stdout", args.stdout, c.outputs.stdout);
    Ok(())
}

fn main() -> std::process::ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Args::command().get_matches();
    let mut args = match Args::from_arg_matches(&matches) {
        Ok(a) => a,
        Err(e) => e.exit(),
    };
    if let Err(e) = apply_config(&mut args, &matches) {
        eprintln!("imprint-agent: error: {e:#}");
        return std::process::ExitCode::from(2);
    }
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("imprint-agent: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
