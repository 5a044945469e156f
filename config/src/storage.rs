//! `[storage]`: where the lake lives. Owns turning what a person types (a relative path, a
//! `file://`, `s3://`, `gs://`, `az://` or `memory://` URL) into one absolute `Url`, and keeping
//! credentials in `options` out of `Debug` output.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use url::Url;

use crate::error::{ConfigError, Result};

/// Schemes the lake knows how to open. Kept deliberately short: accepting an alias here that
/// the lake cannot build a store for would only move the error to the first run.
const SCHEMES: &[&str] = &["file", "s3", "gs", "az", "memory"];

/// Option keys whose values are credentials, matched as substrings of the lower-cased key.
const SECRET_MARKERS: &[&str] = &["secret", "token", "password", "key", "sas", "credential", "signature"];

/// Validated `[storage]`.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageConfig {
    /// Always absolute: a bare or relative path becomes `file:///abs/path`.
    pub url: Url,
    /// Passed to object_store builders (`aws_endpoint`, `aws_region`, …). Keys are lower-case,
    /// the form object_store's config-key parsers accept.
    pub options: BTreeMap<String, String>,
}

impl fmt::Debug for StorageConfig {
    // Options may carry credentials (aws_secret_access_key, azure_storage_sas_key, …).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted<'a>(&'a BTreeMap<String, String>);
        impl fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(k, v)| {
                        let shown = if is_secret_key(k) { "[REDACTED]" } else { v };
                        (k, shown)
                    }))
                    .finish()
            }
        }
        f.debug_struct("StorageConfig")
            .field("url", &self.url.as_str())
            .field("options", &Redacted(&self.options))
            .finish()
    }
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_MARKERS.iter().any(|m| key.contains(m))
}

/// Parses a storage location as accepted in `storage.url`, `LASTSEEN_STORAGE__URL` and
/// `--lake`. Errors are reported against the `storage.url` field.
pub fn parse_storage_url(s: &str) -> Result<Url> {
    storage_url(s).map_err(|message| ConfigError::Invalid {
        origin: "storage url".to_owned(),
        field: "storage.url".to_owned(),
        message,
    })
}

pub(crate) fn storage_url(s: &str) -> std::result::Result<Url, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if s.contains("://") {
        return object_url(s);
    }
    if s.starts_with('~') {
        return Err(format!("`{s}`: `~` is not expanded here; use an absolute path"));
    }
    let path = Path::new(s);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        let cwd = std::env::current_dir()
            .map_err(|e| format!("cannot resolve relative path `{s}`: current directory: {e}"))?;
        cwd.join(path)
    };
    Url::from_file_path(normalize(&absolute)).map_err(|()| format!("`{s}` cannot be expressed as a file:// URL"))
}

fn object_url(s: &str) -> std::result::Result<Url, String> {
    // The input is not echoed: an unparsable URL may still carry credentials.
    let url = Url::parse(s).map_err(|e| format!("not a valid URL: {e}"))?;
    let scheme = url.scheme();
    if !SCHEMES.contains(&scheme) {
        return Err(format!(
            "unsupported scheme `{scheme}://` (use a path, file://, s3://, gs://, az:// or memory://)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        // A URL ends up in logs and run manifests; credentials belong in [storage.options].
        return Err("must not contain credentials; put them in [storage.options]".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query string or fragment".to_owned());
    }
    match scheme {
        "file" => {
            if url.host_str().is_some_and(|h| !h.is_empty()) {
                return Err(format!(
                    "`{s}` names host `{}`; file URLs must be absolute (file:///path) \
                     or use a plain relative path",
                    url.host_str().unwrap_or_default()
                ));
            }
            if url.to_file_path().is_err() {
                return Err(format!("`{s}` is not a usable local path"));
            }
        }
        "memory" => {}
        _ => {
            if url.host_str().is_none_or(str::is_empty) {
                let what = if scheme == "az" { "container" } else { "bucket" };
                return Err(format!("`{s}` has no {what} name ({scheme}://{what}/prefix)"));
            }
        }
    }
    Ok(url)
}

/// Removes `.` and resolves `..` lexically. The directory may not exist yet (first run), so
/// `canonicalize` is not an option.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push(c);
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_path_becomes_absolute_file_url() {
        let url = storage_url("./some/../lake-data").unwrap();
        assert_eq!(url.scheme(), "file");
        let expected = std::env::current_dir().unwrap().join("lake-data");
        assert_eq!(url.to_file_path().unwrap(), expected);
    }

    #[test]
    fn absolute_path_and_file_url() {
        let url = storage_url("/var/lib/lastseen").unwrap();
        assert_eq!(url.as_str(), "file:///var/lib/lastseen");
        let url = storage_url("file:///var/lib/lastseen").unwrap();
        assert_eq!(url.as_str(), "file:///var/lib/lastseen");
        assert!(storage_url("file://relative/x").is_err());
    }

    #[test]
    fn object_store_urls_are_kept() {
        for s in ["s3://my-bucket/lastseen", "gs://bucket/prefix", "az://container/prefix", "memory://"] {
            assert_eq!(storage_url(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn bad_urls_are_rejected() {
        for s in ["", "ftp://x/y", "s3://", "s3://key:secret@bucket/p", "s3://bucket/p?x=1", "~/lake"] {
            assert!(storage_url(s).is_err(), "{s}");
        }
        let err = storage_url("s3://key:secret@bucket/p").unwrap_err();
        assert!(!err.contains("secret@"), "{err}");
    }

    #[test]
    fn debug_redacts_secret_options() {
        let cfg = StorageConfig {
            url: storage_url("s3://b/p").unwrap(),
            options: [
                ("aws_region".to_owned(), "eu-west-1".to_owned()),
                ("aws_secret_access_key".to_owned(), "hunter2".to_owned()),
            ]
            .into(),
        };
        let dbg = format!("{cfg:?}");
        assert!(dbg.contains("eu-west-1"));
        assert!(!dbg.contains("hunter2"));
    }
}
