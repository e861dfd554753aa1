//! File access at the CLI's edge: bounded reads, atomic writes, and the exit-code
//! classification of failures.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use anyhow::Context;
use imprint_schema::Profile;
use imprint_schema::{DocumentError, Format, to_pretty_json, to_yaml};

/// Exit code: everything is fine.
pub const EXIT_OK: u8 = 0;
/// Exit code: findings (differences, invalid documents).
pub const EXIT_FINDINGS: u8 = 1;
/// Exit code: usage or I/O error (also what clap uses for bad arguments).
pub const EXIT_ERROR: u8 = 2;

/// Largest key, policy or predicate file read.
pub const MAX_SMALL_FILE: usize = 1 << 20;

/// A failure with the exit code it maps to.
pub struct Failure {
    /// 1 for invalid input, 2 for usage and I/O errors.
    pub code: u8,
    /// What went wrong, with context.
    pub error: anyhow::Error,
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", self.error)
    }
}

impl Failure {
    /// Invalid input: exit 1.
    pub fn invalid(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: EXIT_FINDINGS,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure {
            code: EXIT_ERROR,
            error: error.into(),
        }
    }
}

/// Result of a command: the exit code, or a failure.
pub type CmdResult = Result<u8, Failure>;

/// Reads a whole file (or stdin for `-`), refusing anything larger than `limit`
/// before reading it.
pub fn read_bounded(path: &Path, limit: usize) -> anyhow::Result<Vec<u8>> {
    let mut reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(io::stdin().lock())
    } else {
        let file =
            fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let meta = file.metadata()?;
        if meta.is_dir() {
            anyhow::bail!("{} is a directory", path.display());
        }
        if meta.len() > limit as u64 {
            return Err(DocumentError::TooLarge {
                size: meta.len(),
                limit,
            })
            .with_context(|| path.display().to_string());
        }
        Box::new(file)
    };
    let mut bytes = Vec::new();
    reader
        .by_ref()
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() > limit {
        return Err(DocumentError::TooLarge {
            size: bytes.len() as u64,
            limit,
        })
        .with_context(|| path.display().to_string());
    }
    Ok(bytes)
}

/// Reads and validates a profile. Bad content is [`Failure::invalid`] (exit 1);
/// a missing or unreadable file is an I/O error (exit 2).
pub fn load_profile(path: &Path) -> Result<Profile, Failure> {
    let bytes = read_bounded(path, imprint_schema::DEFAULT_MAX_DOCUMENT_BYTES).map_err(|e| {
        if e.downcast_ref::<DocumentError>().is_some() {
            Failure::invalid(e)
        } else {
            Failure::from(e)
        }
    })?;
    imprint_schema::parse_profile(&bytes)
        .map_err(|e| Failure::invalid(anyhow::Error::new(e).context(path.display().to_string())))
}

/// The output format for a profile: from the flag, else the file extension, else YAML.
pub fn output_format(flag: Option<Format>, path: Option<&Path>) -> Format {
    flag.unwrap_or_else(
        || match path.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
            Some("json") => Format::Json,
            _ => Format::Yaml,
        },
    )
}

/// Renders a profile in a format.
pub fn render_profile(profile: &Profile, format: Format) -> String {
    match format {
        Format::Json => to_pretty_json(profile),
        Format::Yaml => to_yaml(profile),
    }
}

/// Writes to a file atomically (a temporary file in the same directory, then a
/// rename), or to stdout when `path` is `None` or `-`.
pub fn write_output(path: Option<&Path>, content: &[u8]) -> anyhow::Result<()> {
    match path {
        None => write_stdout(content),
        Some(p) if p == Path::new("-") => write_stdout(content),
        Some(p) => write_atomic(p, content, imprint_fs::PUBLIC),
    }
}

fn write_stdout(content: &[u8]) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(content).and_then(|_| out.flush()) {
        // A closed pipe (`| head`) is not an error worth a message.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

/// Writes `content` to `path` atomically (see `imprint_fs`), the file getting
/// `mode`: readers never see half a file, and a private key is never readable
/// by others, not even for a moment.
pub fn write_atomic(path: &Path, content: &[u8], mode: u32) -> anyhow::Result<()> {
    imprint_fs::write_atomic(path, content, mode)
        .with_context(|| format!("cannot write {}", path.display()))
}
