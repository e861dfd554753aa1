//! The repositories profiles may come from: the policy's `profiles.repositories`
//! globs. Without them any repository a digest is seen from is asked; with them,
//! no other is.
//!
//! A glob names `registry/repository` with whole-segment wildcards, as the
//! profile path patterns do: `*` is one segment, `**` any number (zero or more),
//! so `registry.example/shop/**` admits `registry.example/shop/web` and
//! `registry.example/shop/team/api`, not `registry.example/tenant/web`.

use serde::{Deserialize, Serialize};

/// The policy file's `profiles` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileSources {
    /// Globs of the repositories (`registry/repository`) profiles may come from.
    pub repositories: Vec<String>,
}

/// Why `profiles.repositories` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepositoryGlobError {
    /// The list is empty: no repository could be asked.
    #[error(
        "profiles.repositories is empty: no repository would be asked (remove the key to ask any)"
    )]
    Empty,
    /// A glob does not parse.
    #[error("profiles.repositories[{index}] {glob:?}: {source}")]
    Invalid {
        /// Its position in the list.
        index: usize,
        /// The glob as written.
        glob: String,
        /// What is wrong with it.
        source: imprint_schema::pattern::PatternError,
    },
    /// A glob starts with `/`, or has no repository part.
    #[error(
        "profiles.repositories[{index}] {glob:?}: write registry/repository (such as registry.example/shop/**)"
    )]
    NotARepository {
        /// Its position in the list.
        index: usize,
        /// The glob as written.
        glob: String,
    },
}

/// The checked globs of the repositories profiles may come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryGlobs {
    globs: Vec<String>,
}

impl RepositoryGlobs {
    /// Checks the globs as written in the policy.
    pub fn new(globs: &[String]) -> Result<RepositoryGlobs, RepositoryGlobError> {
        if globs.is_empty() {
            return Err(RepositoryGlobError::Empty);
        }
        for (index, glob) in globs.iter().enumerate() {
            if glob.starts_with('/') || !glob.contains('/') {
                return Err(RepositoryGlobError::NotARepository {
                    index,
                    glob: glob.clone(),
                });
            }
            imprint_schema::pattern::parse(&format!("/{glob}")).map_err(|source| {
                RepositoryGlobError::Invalid {
                    index,
                    glob: glob.clone(),
                    source,
                }
            })?;
        }
        Ok(RepositoryGlobs {
            globs: globs.to_vec(),
        })
    }

    /// Whether profiles may come from `repository` (`registry/repository`).
    /// Registry host names are compared without regard to case.
    pub fn allows(&self, repository: &str) -> bool {
        let path = format!("/{}", lower_host(repository));
        self.globs
            .iter()
            .any(|glob| imprint_schema::pattern::matches(&format!("/{}", lower_host(glob)), &path))
    }

    /// The globs, as written.
    pub fn globs(&self) -> &[String] {
        &self.globs
    }
}

/// `name` with its first segment (the registry host) in lower case.
fn lower_host(name: &str) -> String {
    match name.split_once('/') {
        Some((host, rest)) => format!("{}/{rest}", host.to_ascii_lowercase()),
        None => name.to_ascii_lowercase(),
    }
}
