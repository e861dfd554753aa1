//! Redacting credentials from URLs before they are printed or logged.
//!
//! Registry clients, webhooks and Alertmanager are reached by URLs that may carry
//! secrets: userinfo (`https://user:pass@host`), and query or fragment
//! parameters such as a presigned blob redirect's `X-Amz-Signature` or a
//! webhook's `?token=`. Errors from reqwest and oci-client quote the URL they
//! failed on. [`redact_url`] rewrites one URL; [`redact_urls`] every URL found
//! in a text (an error message, a chain of them). What is secret becomes `***`;
//! scheme, host, port and path stay, so the message still says where.
//!
//! Secrets kept in a URL's path (a Slack-style `/services/T…/B…/XXXX`) cannot
//! be told from an ordinary path and are not redacted.

use std::borrow::Cow;

/// What replaces a secret.
pub const REDACTED: &str = "***";

/// Parameter names that are secret exactly (compared without case).
const SECRET_NAMES: &[&str] = &[
    "sig",
    "key",
    "code",
    "auth",
    "pass",
    "pwd",
    "jwt",
    "session",
    "sessionid",
    "sid",
];

/// Parameter names that are secret when they contain one of these (without
/// case): `access_token`, `X-Amz-Security-Token`, `X-Amz-Signature`,
/// `X-Goog-Credential`, `client_secret`, `password`, `api_key`…
const SECRET_PARTS: &[&str] = &[
    "token",
    "secret",
    "passw",
    "signature",
    "credential",
    "apikey",
    "api_key",
    "api-key",
    "authorization",
    "private",
];

/// Whether a query or fragment parameter of this name holds a secret.
pub fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAMES.contains(&name.as_str()) || SECRET_PARTS.iter().any(|p| name.contains(p))
}

/// `url` with its userinfo and secret parameters replaced by `***`
/// (`https://***@host/p?service=r&token=***`). Text without `://` is returned
/// as it is.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    match authority.rfind('@') {
        Some(at) => {
            out.push_str(REDACTED);
            out.push_str(&authority[at..]);
        }
        None => out.push_str(authority),
    }
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (tail, None),
    };
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            out.push_str(&redact_parameters(query));
        }
        None => out.push_str(before_fragment),
    }
    if let Some(fragment) = fragment {
        // OAuth's implicit flow puts `access_token=` in the fragment.
        out.push('#');
        out.push_str(&redact_parameters(fragment));
    }
    out
}

/// `a=1&token=s` → `a=1&token=***`; a part without `=` stays.
fn redact_parameters(parameters: &str) -> String {
    parameters
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_parameter(name) => {
                Cow::Owned(format!("{name}={REDACTED}"))
            }
            _ => Cow::Borrowed(pair),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `text` with every URL in it (`scheme://…` up to white space, a quote, an
/// angle bracket or a closing parenthesis) passed through [`redact_url`].
/// Trailing punctuation (`.`, `,`, `;`, `:`) is taken as the sentence's, as
/// error messages put it there (`url https://h/x?token=s, code: 500`).
pub fn redact_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(marker) = rest.find("://") {
        // The scheme: letters, digits, `+`, `-`, `.` before `://`.
        let start = rest[..marker]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        let after = &rest[marker + 3..];
        let mut end = marker
            + 3
            + after
                .find(|c: char| {
                    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')')
                })
                .unwrap_or(after.len());
        while end > marker + 3 && rest[..end].ends_with(['.', ',', ';', ':', '!', '?']) {
            end -= 1;
        }
        out.push_str(&rest[..start]);
        out.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Displays `T` with the URLs in its text redacted ([`redact_urls`]); the
/// alternate form (`{:#}`, anyhow's chain of causes) is kept.
///
/// ```
/// use imprint_oci::redact::Redacted;
/// let e = "error sending request for url (https://u:p@r.example/v2/?token=s)";
/// assert_eq!(
///     Redacted(e).to_string(),
///     "error sending request for url (https://***@r.example/v2/?token=***)"
/// );
/// ```
pub struct Redacted<T>(pub T);

impl<T: std::fmt::Display> std::fmt::Display for Redacted<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = if f.alternate() {
            format!("{:#}", self.0)
        } else {
            self.0.to_string()
        };
        f.write_str(&redact_urls(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_and_secret_parameters_are_redacted() {
        for (url, expected) in [
            ("https://user:pass@h.example/x", "https://***@h.example/x"),
            ("http://token@h:8080", "http://***@h:8080"),
            // The last `@` ends the userinfo: a password may hold one.
            ("https://u:p@ss@h/x", "https://***@h/x"),
            (
                "https://h/hook?channel=ops&token=abc&Signature=s",
                "https://h/hook?channel=ops&token=***&Signature=***",
            ),
            (
                "https://b.s3.amazonaws.com/blob?X-Amz-Algorithm=AWS4&X-Amz-Credential=AK%2F1&X-Amz-Security-Token=t&X-Amz-Signature=0f",
                "https://b.s3.amazonaws.com/blob?X-Amz-Algorithm=AWS4&X-Amz-Credential=***&X-Amz-Security-Token=***&X-Amz-Signature=***",
            ),
            (
                "https://acct.blob.core.windows.net/c/b?sv=2021&sig=abc%3D&se=2026",
                "https://acct.blob.core.windows.net/c/b?sv=2021&sig=***&se=2026",
            ),
            (
                "https://h/cb#access_token=t&state=1",
                "https://h/cb#access_token=***&state=1",
            ),
            (
                "https://h/x?api_key=1&password=2&key=3&client_secret=4&flag",
                "https://h/x?api_key=***&password=***&key=***&client_secret=***&flag",
            ),
            // Nothing secret: unchanged, an @ in the path is not userinfo.
            (
                "https://auth.example/token?service=r&scope=repository:p:pull",
                "https://auth.example/token?service=r&scope=repository:p:pull",
            ),
            ("https://h/users/@me?page=2", "https://h/users/@me?page=2"),
            ("http://[::1]:9093/api", "http://[::1]:9093/api"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(url), expected, "{url}");
        }
    }

    #[test]
    fn urls_in_error_messages_are_redacted_and_the_rest_is_kept() {
        let text = "Server error: url https://u:p@r.example/v2/a/blobs/sha256:1?X-Amz-Signature=ff, code: 500, message: (https://h/?token=t). see \"http://x/?sig=1\"";
        assert_eq!(
            redact_urls(text),
            "Server error: url https://***@r.example/v2/a/blobs/sha256:1?X-Amz-Signature=***, code: 500, message: (https://h/?token=***). see \"http://x/?sig=***\""
        );
        assert!(matches!(redact_urls("no urls here"), Cow::Borrowed(_)));
        // Several on one line, one at the very start and one at the end.
        assert_eq!(
            redact_urls("https://a:b@h1/ then tcp://h2:1 then http://c@h3"),
            "https://***@h1/ then tcp://h2:1 then http://***@h3"
        );
    }

    #[test]
    fn registry_errors_quote_urls_redacted() {
        let e = crate::RegistryError::Request {
            operation: "pull",
            reference: "r.example/p@sha256:1".into(),
            source: oci_client::errors::OciDistributionError::ServerError {
                code: 403,
                url: "https://b.s3.example/blob?X-Amz-Signature=ff00".into(),
                message: "denied".into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "pull r.example/p@sha256:1: Server error: url https://b.s3.example/blob?X-Amz-Signature=***, code: 403, message: denied"
        );
    }

    #[test]
    fn redacted_keeps_the_alternate_form() {
        let chain = anyhow_like::Chain;
        assert_eq!(Redacted(&chain).to_string(), "outer");
        assert_eq!(
            format!("{:#}", Redacted(&chain)),
            "outer: fetching https://***@h/x?token=***"
        );
    }

    /// A type displayed as anyhow displays a chain: the causes only with `{:#}`.
    mod anyhow_like {
        pub(super) struct Chain;
        impl std::fmt::Display for Chain {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("outer")?;
                if f.alternate() {
                    f.write_str(": fetching https://u:p@h/x?token=s")?;
                }
                Ok(())
            }
        }
    }
}
