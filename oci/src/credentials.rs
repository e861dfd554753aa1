//! Registry credentials where docker, podman, oras and cosign users keep them.
//!
//! Files, first found wins: `$REGISTRY_AUTH_FILE` (podman, skopeo),
//! `$DOCKER_CONFIG/config.json`, `~/.docker/config.json`,
//! `$XDG_RUNTIME_DIR/containers/auth.json`. In a file, a registry's `credHelpers`
//! entry wins over `credsStore`, which wins over an inline `auths` entry, as docker
//! does it. Helpers are the `docker-credential-<name>` programs of the credential
//! helper protocol (`get`, host on stdin, `{"Username","Secret"}` on stdout).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use serde::Deserialize;

/// A credential for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// User name and password (or token used as a password).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
        }
    }
}

impl From<Credential> for oci_client::secrets::RegistryAuth {
    fn from(c: Credential) -> Self {
        match c {
            Credential::Basic { username, password } => {
                oci_client::secrets::RegistryAuth::Basic(username, password)
            }
        }
    }
}

/// Why credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The file is unreadable or not a docker config.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The file is a docker config, but not one imprint can use.
    #[error("{path}: {source}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong in it.
        #[source]
        source: DockerConfigError,
    },
    /// The helper program failed or answered nonsense.
    #[error("credential helper docker-credential-{helper} for {host}: {message}")]
    Helper {
        /// The helper's name.
        helper: String,
        /// The registry.
        host: String,
        /// What went wrong.
        message: String,
    },
}

/// Why a docker config file, or its entry for one registry, cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DockerConfigError {
    /// The text is not a docker config file.
    #[error("not a docker config file: {0}")]
    NotAConfig(#[source] serde_json::Error),
    /// An entry's `auth` is not base64.
    #[error("auths.{host}.auth is not base64: {source}")]
    AuthNotBase64 {
        /// The registry.
        host: String,
        /// The decoding error.
        #[source]
        source: base64::DecodeError,
    },
    /// An entry's `auth` decodes to bytes that are not UTF-8.
    #[error("auths.{host}.auth is not UTF-8")]
    AuthNotUtf8 {
        /// The registry.
        host: String,
    },
    /// An entry's `auth` has no `:` between user name and password.
    #[error("auths.{host}.auth is not user:password")]
    AuthNotUserPassword {
        /// The registry.
        host: String,
    },
    /// The entry holds only an identity token.
    #[error(
        "auths.{host} holds an identity token, which imprint does not support yet; use --username and --password-stdin"
    )]
    IdentityToken {
        /// The registry.
        host: String,
    },
}

/// The parts of a docker/podman config file that hold credentials.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerConfig {
    /// Inline credentials by registry.
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    /// Helpers by registry.
    #[serde(default)]
    pub cred_helpers: BTreeMap<String, String>,
    /// The default helper.
    #[serde(default)]
    pub creds_store: Option<String>,
}

/// One `auths` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthEntry {
    /// base64 of `user:password`.
    #[serde(default)]
    pub auth: Option<String>,
    /// A user name given apart.
    #[serde(default)]
    pub username: Option<String>,
    /// A password given apart.
    #[serde(default)]
    pub password: Option<String>,
    /// An OAuth2 refresh token (not supported yet).
    #[serde(default)]
    pub identitytoken: Option<String>,
}

/// Where a registry's credential comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    /// Written in the file.
    Inline(Credential),
    /// Ask this helper.
    Helper(String),
    /// Nothing for this registry.
    None,
}

/// `host[:port]` of a config key: keys may be URLs (`https://index.docker.io/v1/`).
pub fn normalize_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

impl DockerConfig {
    /// Parses a config file's content.
    pub fn parse(text: &str) -> Result<DockerConfig, DockerConfigError> {
        serde_json::from_str(text).map_err(DockerConfigError::NotAConfig)
    }

    /// Where the credential for `host` comes from.
    pub fn lookup(&self, host: &str) -> Result<Source, DockerConfigError> {
        if let Some(helper) = self
            .cred_helpers
            .iter()
            .find(|(k, _)| normalize_host(k) == host)
            .map(|(_, v)| v)
        {
            return Ok(Source::Helper(helper.clone()));
        }
        if let Some(store) = &self.creds_store {
            return Ok(Source::Helper(store.clone()));
        }
        let Some(entry) = self
            .auths
            .iter()
            .find(|(k, _)| normalize_host(k) == host)
            .map(|(_, v)| v)
        else {
            return Ok(Source::None);
        };
        if let (Some(username), Some(password)) = (&entry.username, &entry.password) {
            return Ok(Source::Inline(Credential::Basic {
                username: username.clone(),
                password: password.clone(),
            }));
        }
        if let Some(auth) = &entry.auth {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|source| DockerConfigError::AuthNotBase64 {
                    host: host.to_string(),
                    source,
                })?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| DockerConfigError::AuthNotUtf8 {
                    host: host.to_string(),
                })?;
            let (username, password) =
                decoded
                    .split_once(':')
                    .ok_or_else(|| DockerConfigError::AuthNotUserPassword {
                        host: host.to_string(),
                    })?;
            return Ok(Source::Inline(Credential::Basic {
                username: username.to_string(),
                password: password.to_string(),
            }));
        }
        if entry.identitytoken.is_some() {
            return Err(DockerConfigError::IdentityToken {
                host: host.to_string(),
            });
        }
        Ok(Source::None)
    }
}

/// The config files to look in, in order, from the environment.
pub fn config_paths(env: impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    if let Some(p) = env("REGISTRY_AUTH_FILE") {
        paths.push(PathBuf::from(p));
    }
    if let Some(d) = env("DOCKER_CONFIG") {
        paths.push(Path::new(&d).join("config.json"));
    }
    if let Some(h) = env("HOME") {
        paths.push(Path::new(&h).join(".docker/config.json"));
    }
    if let Some(r) = env("XDG_RUNTIME_DIR") {
        paths.push(Path::new(&r).join("containers/auth.json"));
    }
    paths
}

/// Asks `docker-credential-<helper>` (found on `search_path`) for `host`.
pub fn run_helper(
    helper: &str,
    host: &str,
    search_path: Option<&std::ffi::OsStr>,
) -> Result<Option<Credential>, CredentialsError> {
    let fail = |message: String| CredentialsError::Helper {
        helper: helper.to_string(),
        host: host.to_string(),
        message,
    };
    if !helper
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(fail(
            "the helper name holds characters a program name cannot".into(),
        ));
    }
    let program = format!("docker-credential-{helper}");
    let mut command = Command::new(&program);
    if let Some(path) = search_path {
        command.env("PATH", path);
    }
    let mut child = command
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run {program}: {e}")))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(host.as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stdout);
        // The protocol's answer for "no credential" (stdout), as docker reads it.
        if said.contains("credentials not found") {
            return Ok(None);
        }
        return Err(fail(format!(
            "exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        username: String,
        secret: String,
    }
    let answer: Answer = serde_json::from_slice(&out.stdout).map_err(|e| {
        fail(format!(
            "answered something else than {{\"Username\",\"Secret\"}}: {e}"
        ))
    })?;
    if answer.username == "<token>" {
        return Err(fail(
            "returned an identity token, which imprint does not support yet".into(),
        ));
    }
    Ok(Some(Credential::Basic {
        username: answer.username,
        password: answer.secret,
    }))
}

/// Finds the credential for `host` in the first config file that exists.
pub fn find(
    host: &str,
    paths: &[PathBuf],
    search_path: Option<&std::ffi::OsStr>,
) -> Result<Option<Credential>, CredentialsError> {
    for path in paths {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(CredentialsError::File {
                    path: path.clone(),
                    message: e.to_string(),
                });
            }
        };
        let file_error = |source| CredentialsError::Config {
            path: path.clone(),
            source,
        };
        let config = DockerConfig::parse(&text).map_err(file_error)?;
        return match config.lookup(host).map_err(file_error)? {
            Source::Inline(c) => Ok(Some(c)),
            Source::Helper(h) => run_helper(&h, host, search_path),
            Source::None => Ok(None),
        };
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> Source {
        Source::Inline(Credential::Basic {
            username: u.into(),
            password: p.into(),
        })
    }

    #[test]
    fn inline_auth_decodes_and_keys_normalise() {
        // "alice:s3cr:t" — a password may hold ':'.
        let c = DockerConfig::parse(
            r#"{"auths": {"https://registry.example:5000/v1/": {"auth": "YWxpY2U6czNjcjp0"},
                           "other.example": {"username": "bob", "password": "pw"}}}"#,
        )
        .unwrap();
        assert_eq!(
            c.lookup("registry.example:5000").unwrap(),
            basic("alice", "s3cr:t")
        );
        assert_eq!(c.lookup("other.example").unwrap(), basic("bob", "pw"));
        assert_eq!(c.lookup("nowhere.example").unwrap(), Source::None);
    }

    #[test]
    fn helpers_win_over_inline() {
        let c = DockerConfig::parse(
            r#"{"auths": {"r.example": {"auth": "YTpi"}}, "credHelpers": {"r.example": "ecr-login"}, "credsStore": "desktop"}"#,
        )
        .unwrap();
        assert_eq!(
            c.lookup("r.example").unwrap(),
            Source::Helper("ecr-login".into())
        );
        assert_eq!(
            c.lookup("x.example").unwrap(),
            Source::Helper("desktop".into())
        );
    }

    #[test]
    fn bad_entries_say_what_and_where() {
        let c = DockerConfig::parse(r#"{"auths": {"r.example": {"auth": "%%%"}}}"#).unwrap();
        assert!(
            c.lookup("r.example")
                .unwrap_err()
                .to_string()
                .contains("auths.r.example.auth is not base64")
        );
        let c =
            DockerConfig::parse(r#"{"auths": {"r.example": {"auth": "bm9jb2xvbg=="}}}"#).unwrap();
        assert!(matches!(
            c.lookup("r.example"),
            Err(DockerConfigError::AuthNotUserPassword { host }) if host == "r.example"
        ));
        let c = DockerConfig::parse(r#"{"auths": {"r.example": {"identitytoken": "t"}}}"#).unwrap();
        assert!(
            c.lookup("r.example")
                .unwrap_err()
                .to_string()
                .contains("identity token")
        );
        let err = DockerConfig::parse("[1]").unwrap_err();
        assert!(matches!(err, DockerConfigError::NotAConfig(_)), "{err:?}");
        assert!(
            err.to_string().starts_with("not a docker config file: "),
            "{err}"
        );
    }

    #[test]
    fn paths_follow_the_tools_order() {
        let env = |k: &str| match k {
            "REGISTRY_AUTH_FILE" => Some("/run/auth.json".to_string()),
            "DOCKER_CONFIG" => Some("/cfg".to_string()),
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        assert_eq!(
            config_paths(env),
            [
                PathBuf::from("/run/auth.json"),
                PathBuf::from("/cfg/config.json"),
                PathBuf::from("/home/u/.docker/config.json")
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_real_helper_program_is_asked() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-imprinttest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread host\n[ \"$1\" = get ] || exit 3\nif [ \"$host\" = r.example ]; then printf '{\"Username\":\"carol\",\"Secret\":\"tok\"}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = Some(dir.path().as_os_str());
        assert_eq!(
            run_helper("imprinttest", "r.example", path).unwrap(),
            Some(Credential::Basic {
                username: "carol".into(),
                password: "tok".into()
            })
        );
        assert_eq!(run_helper("imprinttest", "x.example", path).unwrap(), None);
        let err = run_helper("absent", "r.example", path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot run docker-credential-absent"), "{err}");
        assert!(run_helper("../evil", "r.example", path).is_err());

        // Through a config file.
        let config = dir.path().join("config.json");
        std::fs::write(&config, r#"{"credHelpers": {"r.example": "imprinttest"}}"#).unwrap();
        let found = find("r.example", &[dir.path().join("absent.json"), config], path).unwrap();
        assert_eq!(
            found,
            Some(Credential::Basic {
                username: "carol".into(),
                password: "tok".into()
            })
        );
    }
}
